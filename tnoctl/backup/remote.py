"""Commands on the backup and mail hosts that need a secret on stdin (borg passphrases).

Secrets never go on a command line (visible in ``ps`` and in audit records): borg reads the
passphrase from file descriptor 0 (``BORG_PASSPHRASE_FD=0``). This extends the project's one SSH
adapter (:class:`tnoctl.run.ssh.SshRunner`: the inventory's connection settings, strict host keys,
``sudo -n`` when the host says ``ansible_become``) with borg helpers. Borg runs as the repository
owner through ``runuser`` (so, on a become host: ``sudo -n -u root -- runuser -u borg -- ...``).
Build one with ``BackupSsh.for_inventory(inventory)``.
"""

from __future__ import annotations

from tnoctl.backup import naming
from tnoctl.run.ssh import CommandResult, SshRunner


class BackupSsh(SshRunner):
    """SshRunner plus ``run_input`` (stdin) and helpers to run borg as the repository owner."""

    def run_input(self, host: str, argv: list[str], data: bytes, timeout: float = 3600) -> CommandResult:
        """Run ``argv`` on ``host`` feeding ``data`` on stdin; never raises on rc != 0."""
        return self.run(host, argv, timeout=timeout, input=data)

    def borg_on_backup_host(
        self, host: str, passphrase: str | None, borg_args: list[str], timeout: float = 3600, cwd: str | None = None
    ) -> CommandResult:
        """``borg ARGS`` on the backup host as the repository owner (local repository access), in ``cwd``."""
        env = ["env", *(["-C", cwd] if cwd else []), "BORG_RELOCATED_REPO_ACCESS_IS_OK=yes",
               "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=no"]
        if passphrase is not None:
            env.append("BORG_PASSPHRASE_FD=0")
        argv = ["runuser", "-u", naming.BACKUP_USER, "--", *env, "borg", *borg_args]
        data = (passphrase + "\n").encode() if passphrase is not None else b""
        return self.run_input(host, argv, data, timeout=timeout)

    def fetch_to_file(self, host: str, argv: list[str], dest: str, timeout: float = 6 * 3600) -> int:
        """Run ``argv`` on ``host``, its binary stdout into the local file ``dest``; the exit status."""
        return fetch_to_file(self, host, argv, dest, timeout)


def fetch_to_file(runner: BackupSsh, host: str, argv: list[str], dest: str, timeout: float = 6 * 3600) -> int:
    """Run ``argv`` on ``host`` and write its binary stdout to ``dest`` (Maildir export tarballs); rc."""
    with open(dest, "wb") as fh:
        return runner.stream(host, argv, fh.write, timeout)
