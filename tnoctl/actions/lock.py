"""`lock release`: break a tenant's lock whose operation died, audited as one operation.

The operation itself takes no lock (it removes one). The verb confirms: ``confirm`` gets the question
naming the holder (None with --yes); a "no" is Refused (exit 4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tnoctl.actions.env import Env
from tnoctl.actions.operation import Outcome, operation
from tnoctl.errors import Refused
from tnoctl.state import current_host, locks


@dataclass(frozen=True)
class LockReleaseRequest:
    """Which tenant's lock to release; ``confirm(question)`` decides, None means --yes."""

    tenant: str
    confirm: Callable[[str], bool] | None = None


def release(env: Env, request: LockReleaseRequest) -> Outcome:
    """Remove the tenant's lock whoever holds it; exit 0 also when it was not locked."""
    tenant = request.tenant
    path = locks.lock_path(env.state_dir, tenant)  # validates the slug before anything is recorded
    params = {"tenant": tenant, "yes": request.confirm is None}
    with operation(env, "lock release", params, tenants=[tenant], lock=False) as op:
        status = next((s for s in locks.list_locks(env.state_dir) if s.tenant == tenant), None)
        if status is None:
            op.details["released"] = False
            return Outcome(message=f"tenant {tenant} is not locked; nothing to release")
        info = status.info
        holder = f"{info.verb} (pid {info.pid} on {info.host}, operator {info.owner})" if info else str(path)
        if info and status.state == "held" and info.host == current_host():
            env.output.warn(f"the holder of {tenant}'s lock, pid {info.pid}, is still running on this host")
        if request.confirm is not None and not request.confirm(f"Release {tenant}'s lock held by {holder}?"):
            raise Refused(f"{tenant}'s lock was not released (not confirmed)")
        released = locks.release(env.state_dir, tenant)
        op.details["released"] = released is not None
        if info is not None:
            op.details["holder"] = {"verb": info.verb, "pid": info.pid, "host": info.host,
                                    "operator": info.owner, "operation_id": info.operation_id}
        return Outcome(message=f"released {tenant}'s lock held by {holder}" if released else f"{tenant} was not locked")
