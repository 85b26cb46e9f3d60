"""Backup building blocks: the mail manifest, borg output parsing, naming, the host agent.

``manifest.py`` and ``agent.py`` use the standard library only: the ``tno_backup`` role copies
them onto the managed hosts (``/usr/local/lib/tno-backup/``), so the manifest a drill compares
is computed by the very code the unit tests exercise.
"""
