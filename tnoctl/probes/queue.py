"""Mail queue via SSH: ``postqueue -j`` (one JSON object per line) → per tenant, per queue.

Pure part: :func:`parse_postqueue` and :func:`summarize`, tested on recorded output.
Messages are attributed to a tenant by the sender's domain (else the first recipient's
domain). Only counts and ages leave this module: never an address.
I/O goes through an injected command runner (the SSH adapter of ``tnoctl.run``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error

QUEUES: tuple[str, ...] = ("active", "deferred", "hold", "incoming", "maildrop")
POSTQUEUE_ARGV: tuple[str, ...] = ("postqueue", "-j")
DEFERRED_WARNING = 50
STALLED_AGE_SECONDS = 900.0

CommandRunner = Callable[[str, list[str], float], str]
"""(host name, argv, timeout) → stdout; raises on failure (non-zero exit, SSH error, timeout)."""


@dataclass(frozen=True)
class QueuedMessage:
    """One queued message, reduced to what the metrics need."""

    queue: str
    arrival_time: float
    domain: str


@dataclass
class QueueSummary:
    """Per-queue message counts and oldest arrival of one tenant."""

    messages: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUEUES, 0))
    oldest_arrival: dict[str, float] = field(default_factory=dict)

    def oldest_age(self, queue: str, now: float) -> float:
        """Age in seconds of the oldest message in ``queue`` (0 when empty)."""
        arrival = self.oldest_arrival.get(queue)
        return max(0.0, now - arrival) if arrival is not None else 0.0


def _domain(address: object) -> str:
    if not isinstance(address, str) or "@" not in address:
        return ""
    return address.rsplit("@", 1)[1].lower()


def parse_postqueue(text: str) -> tuple[list[QueuedMessage], int]:
    """Parse ``postqueue -j`` output; return the messages and the number of unreadable lines."""
    messages: list[QueuedMessage] = []
    bad = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            queue = str(obj["queue_name"])
            arrival = float(obj["arrival_time"])
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        domain = _domain(obj.get("sender"))
        if not domain:
            recipients = obj.get("recipients") or []
            domain = _domain(recipients[0].get("address")) if recipients and isinstance(recipients[0], dict) else ""
        messages.append(QueuedMessage(queue, arrival, domain))
    return messages, bad


def summarize(messages: list[QueuedMessage], domain_to_tenant: Mapping[str, str],
              tenants: list[str]) -> tuple[dict[str, QueueSummary], int]:
    """Per-tenant summaries (every listed tenant present, zeros included) and unattributed count."""
    out = {t: QueueSummary() for t in tenants}
    unattributed = 0
    for msg in messages:
        tenant = domain_to_tenant.get(msg.domain)
        if tenant not in out:
            unattributed += 1
            continue
        summary = out[tenant]
        summary.messages[msg.queue] = summary.messages.get(msg.queue, 0) + 1
        prev = summary.oldest_arrival.get(msg.queue)
        summary.oldest_arrival[msg.queue] = msg.arrival_time if prev is None else min(prev, msg.arrival_time)
    return out, unattributed


def queue_results(summaries: Mapping[str, QueueSummary], now: float, latency: float) -> list[ProbeResult]:
    """One ``queue`` result per tenant: value = total messages; ``values`` per queue (see docs)."""
    results = []
    for tenant, s in sorted(summaries.items()):
        values: dict[str, float] = {}
        for q in sorted(set(QUEUES) | set(s.messages)):
            values[f"messages.{q}"] = float(s.messages.get(q, 0))
            values[f"oldest_age_seconds.{q}"] = s.oldest_age(q, now)
        deferred = s.messages.get("deferred", 0)
        stalled = max(s.oldest_age("active", now), s.oldest_age("incoming", now))
        problems = []
        if deferred >= DEFERRED_WARNING:
            problems.append(f"{deferred} deferred")
        if stalled >= STALLED_AGE_SECONDS:
            problems.append(f"active queue stalled {stalled:.0f}s")
        detail = "; ".join(problems) or f"{sum(s.messages.values())} queued"
        results.append(ProbeResult(tenant, "mail", "queue", not problems, latency, detail,
                                   value=float(sum(s.messages.values())), values=values, severity="warning"))
    return results


def probe_queue(host: str, tenants: list[str], domain_to_tenant: Mapping[str, str], run: CommandRunner,
                timeout: float, now: float) -> list[ProbeResult]:
    """Run ``postqueue -j`` on a mail host and report every tenant it serves."""
    watch = Stopwatch()
    try:
        text = run(host, list(POSTQUEUE_ARGV), timeout)
    except Exception as exc:  # the SSH adapter's errors vary; any failure is a failed check
        return [ProbeResult(t, "mail", "queue", False, watch(), short_error(exc), severity="warning")
                for t in tenants]
    messages, _bad = parse_postqueue(text)
    summaries, _unattributed = summarize(messages, domain_to_tenant, tenants)
    return queue_results(summaries, now, watch())
