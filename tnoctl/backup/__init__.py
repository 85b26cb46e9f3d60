"""Controller-side backup helpers: archive/repository naming, borg output parsing, SSH with stdin.

``naming.py`` is standard library only: role ``tno_backup`` also installs it on the hosts, next to
the host-side agent, manifest and rollback tools, which live apart in :mod:`tnoctl.hostagent`
(controller code never imports those; an import-linter contract checks it).
"""
