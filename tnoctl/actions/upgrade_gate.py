"""Health gate of an upgrade: the host runs the expected version and every tenant on it answers.

What passes the gate, per component:

- ``office``: the installed ``coolwsd`` package is the expected version, and for every tenant on the
  host, HTTPS through the proxy, ``/hosting/capabilities`` (reporting the expected version) and
  ``/hosting/discovery`` answer;
- ``mail``: ``/etc/tno/mail-release`` holds the expected release, and for every tenant SMTP,
  submission, IMAP, IMAPS with the canary login and a mail round trip (canary to itself) succeed.

The gate retries until everything passes or its timeout ends (services take a few seconds to come
back after a restart); it reports the failures of the last attempt. Checks that already failed before
the rollout (``excluded``: ``tenant/check`` keys from tnoctl/actions/upgrade_preflight.py) are reported
in the summary but do not fail the gate. For office, the document-open probe (``office_document``,
tnoctl/probes/office_document.py) is part of the gate when the platform configures it. The probes are tnoctl's own
(tnoctl/probes), the same that ``tnoctl status`` and the exporter run. ``upgrade os`` gates on every
probe of the host's tenants (tnoctl/actions/upgrade_os_gate.py adds package versions and services).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tnoctl.actions.env import Env
from tnoctl.errors import OperationFailed

VERSION_COMMAND = {
    "office": ["dpkg-query", "-W", "-f", "${Version}", "coolwsd"],
    "mail": ["cat", "/etc/tno/mail-release"],
}
"""How the installed version of a component is read on a host (stdout is the version)."""
UNKNOWN = "unknown"


@dataclass
class GateResult:
    """Outcome of the gate for one host."""

    ok: bool
    version: str
    attempts: int
    failures: list[str] = field(default_factory=list)  # "tenant/check: detail" of the last attempt
    excluded: list[str] = field(default_factory=list)  # failures already there before the rollout

    @property
    def summary(self) -> str:
        """One line for the journal and the summary table."""
        if self.ok:
            note = f"; excluded (unhealthy before the rollout): {'; '.join(self.excluded)[:200]}" \
                if self.excluded else ""
            return f"healthy at {self.version} after {self.attempts} attempt(s){note}"
        return f"unhealthy after {self.attempts} attempt(s): " + "; ".join(self.failures[:4])


def installed_version(run: Callable[..., Any], host: str, component: str) -> str:
    """The component's installed version on ``host`` (``unknown`` when not installed or unreadable)."""
    try:
        result = run(host, VERSION_COMMAND[component], timeout=30)
    except OperationFailed:
        return UNKNOWN
    text = result.stdout.strip() if result.ok else ""
    return text.splitlines()[0].strip() if text else UNKNOWN


def _gate_probes(env: Env, component: str, tenants: list[str], version: str | None) -> list[Any]:
    """The component's probes for the host's tenants, built once per gate (vault read once, not per attempt)."""
    from tnoctl.probes import wiring
    from tnoctl.probes.targets import ProbeOptions, network_probes

    opts = ProbeOptions(
        ca_file=wiring.default_ca_file(env.inventory_path),
        timeout=10.0,
        roundtrip=component in ("mail", "os"),
        pinned_office=version if component == "office" else None,
    )
    secrets = wiring.secret_lookup(env.inventory_path, env.vault_password_file)
    probes = network_probes(env.inventory, opts, secrets, only=tenants)
    return [p for p in probes if component == "os" or p.component == component]  # os: every service


def _probe_failures(probes: list[Any]) -> list[str]:
    from tnoctl.probes.runner import run_probes

    return [f"{r.tenant}/{r.check}: {r.detail}" for r in run_probes(probes) if not r.ok] if probes else []


def baseline_failures(env: Env, component: str, tenants: list[str]) -> list[str]:
    """The gate's probe failures (``tenant/check: detail``) for ``tenants`` now, before anything changes.

    Capabilities are probed without a pinned version: a version mismatch before the rollout is expected.
    """
    if not tenants:
        return []
    return _probe_failures(_gate_probes(env, component, tenants, None))


def check(env: Env, component: str, host: str, tenants: list[str], version: str, *,
          timeout: float, interval: float = 3.0, stop: Callable[[], bool] = lambda: False,
          excluded: frozenset[str] = frozenset()) -> GateResult:
    """Retry version + probes until they all pass (``excluded`` checks aside) or ``timeout`` seconds have gone."""
    deadline = time.monotonic() + timeout
    probes = _gate_probes(env, component, tenants, version)

    def host_state() -> tuple[str, list[str]]:
        found = installed_version(env.ssh.run, host, component)
        return found, [] if found == version else [f"{host}: installed {component} version {found}, expected {version}"]

    return poll(host_state, probes, deadline=deadline, interval=interval, stop=stop, excluded=excluded)


def poll(host_state: Callable[[], tuple[str, list[str]]], probes: list[Any], *, deadline: float, interval: float,
         stop: Callable[[], bool], excluded: frozenset[str]) -> GateResult:
    """The gate's retry loop: ``host_state()`` (version found, host failures) first, then the tenants' probes."""
    attempts = 0
    while True:
        attempts += 1
        found, failures = host_state()
        ignored: list[str] = []
        if not failures:
            for failure in _probe_failures(probes):
                (ignored if failure.split(":", 1)[0].strip() in excluded else failures).append(failure)
        if not failures:
            return GateResult(True, found, attempts, excluded=ignored)
        if stop() or time.monotonic() + interval > deadline:
            return GateResult(False, found, attempts, failures, excluded=ignored)
        time.sleep(interval)
