"""Pull the hosts' backup and drill results into the state store (one source of truth, issue 16).

Every backup and drill, timer-run or not, leaves its result on the host that ran it (tno-backup
agent, tnoctl/hostagent/checks.py). :func:`sync` reads them with one ``tno-backup results`` per
mail/office host over the one SSH factory and appends what the store does not have yet
(tnoctl/backup/results.py). Called by `status` and `backup list` before they read, and by the
exporter's background sync thread every ``--backup-sync-interval`` seconds, so a timer-run backup
reaches ``status --json``, ``backup list --json`` and ``/metrics`` within one scrape interval.
Not an audited operation: it only copies facts the hosts already hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tnoctl.actions.backup import last_json, tail
from tnoctl.actions.env import Env
from tnoctl.backup import naming
from tnoctl.backup.results import new_records
from tnoctl.errors import OperationFailed, TnoError
from tnoctl.plan.backup import plan_targets
from tnoctl.state.store import BackupResult


@dataclass(frozen=True)
class SyncReport:
    """What a pull did: hosts read, records appended, one line per host that could not be read."""

    hosts: tuple[str, ...]
    recorded: int
    errors: tuple[str, ...] = ()


def sync(env: Env, tenants: Sequence[str] = (), timeout: float = 30.0) -> SyncReport:
    """Pull the results of the selected tenants' hosts (default: every tenant) into ``env.store``."""
    targets = plan_targets(env.inventory, tuple(tenants))
    expected: dict[str, list[tuple[str, str]]] = {}
    for target in targets:
        for component in target.components:
            expected.setdefault(target.host_of(component), []).append((target.slug, component))
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(expected)))) as pool:
        replies = dict(zip(sorted(expected), pool.map(lambda h: _read(env, h, timeout), sorted(expected)),
                           strict=True))
    recorded, errors = 0, []
    for host, (units, error) in replies.items():
        if units is None:
            errors.append(f"{host}: {error}")
            continue
        for record in new_records(units, expected[host], env.store.latest_backups()):
            if isinstance(record, BackupResult):
                env.store.record_backup(record)
            else:
                env.store.record_verification(record)
            recorded += 1
    return SyncReport(tuple(sorted(expected)), recorded, tuple(errors))


def _read(env: Env, host: str, timeout: float) -> tuple[dict[str, Any] | None, str]:
    """``tno-backup results`` of one host: (units, "") or (None, why not)."""
    try:
        result = env.ssh.run(host, [naming.AGENT, "results"], timeout=timeout)
    except OperationFailed as exc:
        return None, exc.message
    try:
        units = last_json(result.stdout).get("units") if result.ok else None
    except ValueError:
        units = None
    if not isinstance(units, dict):
        return None, f"{naming.AGENT} results (rc {result.rc}): {tail(result.stderr or result.stdout)}"
    return units, ""


def sync_quietly(env: Env, tenants: Sequence[str] = ()) -> SyncReport:
    """:func:`sync` for a reader (`status`, `backup list`): a host it cannot read is a warning, not a failure."""
    try:
        report = sync(env, tenants)
    except TnoError as exc:  # e.g. no backup host in this inventory: nothing to pull, the reader goes on
        env.output.warn(f"backup results not pulled: {exc.message}")
        return SyncReport((), 0, (exc.message,))
    for line in report.errors:
        env.output.warn(f"backup results not pulled from {line}")
    return report
