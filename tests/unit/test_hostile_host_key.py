"""A host-key mismatch (a possible man-in-the-middle) is critical everywhere, never a warning (#13)."""

from __future__ import annotations

from tnoctl.errors import OperationFailed
from tnoctl.probes import report
from tnoctl.probes.base import Probe, ProbeResult, short_error
from tnoctl.probes.queue import probe_queue

MISMATCH = OperationFailed("mail1: host key mismatch (Host key for server mail1 does not match); refusing to connect")


def _refused(host: str, argv: list[str], timeout: float) -> str:
    raise MISMATCH


def test_queue_probe_host_key_mismatch_is_critical_and_fails_status() -> None:
    results = probe_queue("mail1", ["bron", "meyzieu"], {}, _refused, 5.0, 0.0)
    assert [r.severity for r in results] == ["critical", "critical"]
    rows = report.fold(results)
    assert {r.state for r in rows} == {"critical"}
    assert report.exit_code(rows) == 1


def test_ordinary_warning_failures_stay_warnings() -> None:
    results = probe_queue("mail1", ["bron"], {}, lambda *a: (_ for _ in ()).throw(TimeoutError("slow")), 5.0, 0.0)
    assert [r.severity for r in results] == ["warning"]
    assert report.exit_code(report.fold(results)) == 0


def test_a_warning_probe_that_raised_a_mismatch_is_critical() -> None:
    probe = Probe("bron", "mail", "queue", lambda t: [], 5.0, "warning", ("bron",))
    assert [r.severity for r in probe.failed(short_error(MISMATCH), 0.1)] == ["critical"]
    assert ProbeResult("bron", "backup", "backup", False, 0.0, "Host key verification failed.",
                       severity="warning").severity == "critical"


def test_exporter_exports_the_mismatch_for_the_critical_alert(tmp_path) -> None:
    from tnoctl.exporter import app as exporter_app

    exp = exporter_app.build(tmp_path, lambda: {"bron": ("mail",), "meyzieu": ("mail",)}, probes=lambda: [])
    assert exp.cache is not None
    for r in probe_queue("mail1", ["bron"], {}, _refused, 5.0, 0.0):
        exp.cache.put(r, 1.0)
    exp.cache.put(ProbeResult("meyzieu", "mail", "queue", False, 0.1, "TimeoutError: slow", severity="warning"), 1.0)
    text = exp.collector.render()
    assert 'tnoctl_probe_host_key_mismatch{tenant="bron",component="mail",check="queue"} 1.0' in text
    assert 'tnoctl_probe_host_key_mismatch{tenant="meyzieu",component="mail",check="queue"} 0.0' in text
