"""Host-side code: runs ON the managed hosts, never in the tnoctl controller process.

Role ``tno_backup`` copies these files to ``/usr/local/lib/tno-backup/`` (with
``tnoctl/backup/naming.py``, the names both sides share):

* ``agent.py``    the ``tno-backup`` command on mail and office hosts (stage, run, restore);
* ``manifest.py`` the mail manifest (computed by the agent, compared by ``backup drill``);
* ``rollback.py`` append-only repository rollback on the backup host (``backup recover-deleted``).

Standard library only (plus ``tnoctl.backup.naming``), so they run with the host's ``python3``.
The controller reaches them over SSH by their installed paths (``naming.AGENT``,
``naming.MANIFEST_SCRIPT``, ``naming.ROLLBACK_SCRIPT``) and never imports them: an import-linter
contract in pyproject.toml forbids it. The unit tests import them directly.
"""
