"""Health gate of `upgrade os` on one host: planned versions installed, every service back, tenants answer.

What passes the gate (retried until it passes or ``timeout`` seconds have gone, like the component gate):

1. **versions**: every package of the host's target (after a rollback: every package put back) is at the
   expected version (``dpkg-query -W``);
2. **services**: every service that was running at the snapshot is active again (``systemctl
   is-active``): needrestart restarted the services using replaced libraries, and a service that does
   not come back (a broken library, a changed default) fails the gate;
3. **tenants**: every probe of every tenant served by the host (mail and office: tnoctl/probes, the
   same as ``tnoctl status``), except the checks already failing before the rollout (``excluded``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from tnoctl.actions import upgrade_gate
from tnoctl.actions.env import Env
from tnoctl.actions.upgrade_gate import GateResult
from tnoctl.errors import OperationFailed

VERSIONS = ["dpkg-query", "-W", "-f", "${Package}\\t${Version}\\n"]
IS_ACTIVE = ["systemctl", "is-active"]


def version_failures(env: Env, host: str, expected: Mapping[str, str]) -> list[str]:
    """``host: pkg at X, expected Y`` for every package of ``expected`` not at its version."""
    if not expected:
        return []
    try:
        result = env.ssh.run(host, [*VERSIONS, *sorted(expected)], timeout=60)
    except OperationFailed as exc:
        return [f"{host}: cannot read package versions: {exc.message}"]
    found = dict(line.split("\t", 1) for line in result.stdout.splitlines() if "\t" in line)
    return [f"{host}: {pkg} at {found.get(pkg, 'none')}, expected {version}"
            for pkg, version in sorted(expected.items()) if found.get(pkg, "").strip() != version]


def service_failures(env: Env, host: str, services: Sequence[str]) -> list[str]:
    """``host: unit is STATE`` for every service of ``services`` that is not active."""
    if not services:
        return []
    try:
        result = env.ssh.run(host, [*IS_ACTIVE, *services], timeout=60)
    except OperationFailed as exc:
        return [f"{host}: cannot read service states: {exc.message}"]
    states = result.stdout.split()
    if len(states) != len(services):
        return [f"{host}: systemctl is-active answered {len(states)} state(s) for {len(services)} service(s)"]
    return [f"{host}: {unit} is {state}" for unit, state in zip(services, states, strict=True) if state != "active"]


def check(env: Env, host: str, tenants: list[str], expected: Mapping[str, str], services: Sequence[str], *,
          label: str, timeout: float, interval: float = 3.0, stop: Callable[[], bool] = lambda: False,
          excluded: frozenset[str] = frozenset()) -> GateResult:
    """Retry versions, services and tenant probes until they pass (``excluded`` checks aside) or time runs out."""
    deadline = time.monotonic() + timeout
    probes = upgrade_gate._gate_probes(env, "os", tenants, None)

    def host_state() -> tuple[str, list[str]]:
        return label, version_failures(env, host, expected) + service_failures(env, host, services)

    return upgrade_gate.poll(host_state, probes, deadline=deadline, interval=interval, stop=stop, excluded=excluded)
