"""Pure guard data for `deploy`: which handlers of a check+diff pass would interrupt tenants now.

A deploy's check pass (Ansible check+diff) also runs the handlers its changes notify, so the pass
tells which services the real run would restart. A *restart* of a tenant-facing service drops the
sessions of every tenant served by it on that host (coolwsd: open documents; OpenDKIM: mail
signing stalls while it restarts); a *reload* (Postfix, Dovecot, nginx) keeps sessions and is
always allowed. A restart is refused when one of those tenants is outside its maintenance window
(tenants without a window accept changes at any time, as for `upgrade`). No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tnoctl.config.window import Window

# Handler task name -> (service, the placement field naming the host that serves the tenants).
# Only handlers that interrupt sessions are listed; reload handlers are not (they are allowed).
INTERRUPTING_HANDLERS: dict[str, tuple[str, str]] = {
    "Restart coolwsd": ("coolwsd", "office"),
    "Restart OpenDKIM": ("opendkim", "mail"),
}


@dataclass(frozen=True)
class RestartConflict:
    """One service restart the deploy would do on a host while some of its tenants' windows are closed."""

    host: str
    service: str
    tenants: tuple[str, ...]  # "slug (window)" of each tenant outside its window

    @property
    def message(self) -> str:
        """One human line naming the host, the service and the tenants."""
        return f"{self.host}: would restart {self.service} outside the window of {', '.join(self.tenants)}"


def restarts(changes: Iterable[Any]) -> dict[str, set[str]]:
    """Per host, the session-interrupting handlers the check pass reported as (would be) changed."""
    out: dict[str, set[str]] = {}
    for change in changes:
        if change.task in INTERRUPTING_HANDLERS:
            out.setdefault(change.host, set()).add(change.task)
    return out


def closed_tenants(tenants: Iterable[Any], now: datetime) -> list[str]:
    """"slug (window)" of the tenants whose maintenance window is closed at ``now``."""
    return [f"{t.slug} ({t.maintenance_window})" for t in tenants
            if t.maintenance_window and not Window.parse(t.maintenance_window).contains(now)]


def any_window_closed(tenants: Iterable[Any], now: datetime) -> bool:
    """True when one of ``tenants`` is outside its window now (then a deploy needs its check pass)."""
    return bool(closed_tenants(tenants, now))


def conflicts(changes: Iterable[Any], tenants_by_host: Mapping[str, Iterable[Any]],
              now: datetime) -> list[RestartConflict]:
    """The restarts of ``changes`` that would interrupt a tenant outside its window, by host then service.

    ``tenants_by_host`` maps a host to the tenant objects placed on it (any service).
    """
    found = []
    for host, handlers in sorted(restarts(changes).items()):
        for handler in sorted(handlers):
            service, role = INTERRUPTING_HANDLERS[handler]
            served = [t for t in tenants_by_host.get(host, ()) if getattr(t.placement, role, None) == host]
            closed = closed_tenants(served, now)
            if closed:
                found.append(RestartConflict(host, service, tuple(closed)))
    return found
