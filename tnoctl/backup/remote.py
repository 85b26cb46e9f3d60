"""Commands on the backup and mail hosts that need a secret on stdin (borg passphrases).

Secrets never go on a command line (visible in ``ps`` and in audit records): borg reads the
passphrase from file descriptor 0 (``BORG_PASSPHRASE_FD=0``). This extends the project's one SSH
adapter (:class:`tnoctl.run.ssh.SshRunner`: the inventory's connection settings, strict host keys,
``sudo -n`` when the host says ``ansible_become``) with borg helpers. Borg runs as the repository
owner through ``runuser`` (so, on a become host: ``sudo -n -u root -- runuser -u borg -- ...``).
Build one with ``BackupSsh.for_inventory(inventory)``.
"""

from __future__ import annotations

from tnoctl.run.ssh import CommandResult, SshRunner


class BackupSsh(SshRunner):
    """SshRunner plus ``run_input`` (stdin) and ``fetch_to_file`` (binary stdout into a local file).

    Borg commands are built as argv + stdin in :mod:`tnoctl.backup.borg` and run through ``run_input``.
    """

    def run_input(self, host: str, argv: list[str], data: bytes, timeout: float = 3600) -> CommandResult:
        """Run ``argv`` on ``host`` feeding ``data`` on stdin; never raises on rc != 0."""
        return self.run(host, argv, timeout=timeout, input=data)

    def fetch_to_file(self, host: str, argv: list[str], dest: str, timeout: float = 6 * 3600) -> int:
        """Run ``argv`` on ``host``, its binary stdout into the local file ``dest``; the exit status."""
        return fetch_to_file(self, host, argv, dest, timeout)


def fetch_to_file(runner: BackupSsh, host: str, argv: list[str], dest: str, timeout: float = 6 * 3600) -> int:
    """Run ``argv`` on ``host`` and write its binary stdout to ``dest`` (Maildir export tarballs); rc."""
    with open(dest, "wb") as fh:
        return runner.stream(host, argv, fh.write, timeout)
