"""The probe runner: concurrency, per-probe timeouts, a stalled host never delays the others."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tnoctl.probes import smtp
from tnoctl.probes.base import Probe, ProbeResult
from tnoctl.probes.runner import iter_probes, run_probes


@pytest.fixture
def stalling_server() -> Iterator[tuple[int, threading.Event]]:
    """Accepts connections and says nothing until ``release`` is set (a hung Postfix)."""
    release = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], release
    release.set()
    listener.close()
    for c in held:
        c.close()


@pytest.fixture
def fast_server() -> Iterator[int]:
    """Answers a banner and closes (enough for the probe to fail quickly and precisely)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"554 go away\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _smtp_probe(tenant: str, port: int, timeout: float) -> Probe:
    return Probe(tenant, "mail", "smtp", lambda t: smtp.probe_smtp(tenant, "127.0.0.1", port, "mail.x.test", None,
                                                                   t, 0.0), timeout)


def test_stalled_host_does_not_delay_the_others(stalling_server, fast_server) -> None:
    port, release = stalling_server
    probes = [_smtp_probe("stalled", port, 60.0)] + [_smtp_probe(f"fast{i}", fast_server, 60.0) for i in range(5)]
    results = iter_probes(probes, parallelism=4)
    seen = [next(results) for _ in range(5)]  # would block forever if the stalled probe held the others
    assert sorted(r.tenant for r in seen) == [f"fast{i}" for i in range(5)]
    assert all(not r.ok and "banner 554" in r.detail for r in seen)
    release.set()


def test_probe_timeout_is_reported_as_failure(stalling_server) -> None:
    port, _ = stalling_server
    (res,) = run_probes([_smtp_probe("stalled", port, 0.3)])
    assert not res.ok and ("timed out" in res.detail or "timeout" in res.detail)


def test_runner_deadline_beats_a_probe_ignoring_its_timeout() -> None:
    forever = threading.Event()
    probes = [Probe("hung", "office", "office", lambda t: forever.wait() or [], 0.1),
              Probe("ok", "office", "office", lambda t: ProbeResult("ok", "office", "office", True, 0.0), 0.1)]
    results = {r.tenant: r for r in iter_probes(probes, parallelism=2, grace=0.1)}
    assert results["ok"].ok
    assert not results["hung"].ok and results["hung"].detail == "timeout after 0.1s"
    forever.set()


def test_host_level_probe_timeout_fails_every_tenant() -> None:
    forever = threading.Event()
    probe = Probe("a", "mail", "queue", lambda t: forever.wait() or [], 0.05, "warning", ("a", "b"))
    res = list(iter_probes([probe], grace=0.05))
    assert [(r.tenant, r.ok, r.severity) for r in res] == [("a", False, "warning"), ("b", False, "warning")]
    forever.set()


def test_probe_exception_becomes_failed_result() -> None:
    def broken(timeout: float) -> ProbeResult:
        raise RuntimeError("bug in probe")

    (res,) = run_probes([Probe("a", "mail", "imap", broken)])
    assert not res.ok and "RuntimeError: bug in probe" in res.detail


def test_parallelism_is_bounded() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    gate = threading.Barrier(3, timeout=10)

    def body(t: float, i: int) -> ProbeResult:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        if i < 3:
            gate.wait()  # the first three must be able to run together
        with lock:
            state["now"] -= 1
        return ProbeResult(f"t{i}", "mail", "smtp", True, 0.0)

    probes = [Probe(f"t{i}", "mail", "smtp", lambda t, i=i: body(t, i), 10.0) for i in range(9)]
    results = run_probes(probes, parallelism=3)
    assert len(results) == 9 and all(r.ok for r in results)
    assert state["max"] == 3
