"""Issue 18: a scrape re-renders only the tenants whose records or probe results changed.

Structural, not timed: TenantTable.rendered counts tenant renders, and the gzip members of untouched
blocks are the very same bytes objects as before. The output stays equal to a full render.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tnoctl.exporter import app as exporter_app
from tnoctl.exporter.incremental import block_of
from tnoctl.probes.base import ProbeResult
from tnoctl.state.store import BackupResult, DriftRecord, OperationRecord, Store

NOW = 1_800_000_000.0
TENANTS = [f"commune-{i:03d}" for i in range(200)]
KNOWN = {t: ("mail", "office") for t in TENANTS}


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def no_self(got: dict) -> dict:
    return {k: v for k, v in got.items() if not k[0].startswith(("tnoctl_collector_", "tnoctl_store_"))}


def filled(tmp_path: Path):
    store = Store(tmp_path)
    for t in TENANTS:
        for c in ("mail", "office"):
            store.record_backup(BackupResult(t, c, True, NOW - 60, 10.0, 100, 50, 20))
        store.record_operation(OperationRecord(t, "deploy", True, NOW, 3.0))
    exp = exporter_app.build(tmp_path, lambda: KNOWN, probes=lambda: [])
    for t in TENANTS:
        for check in ("smtp", "imaps"):
            exp.cache.put(ProbeResult(t, "mail", check, True, 0.01), NOW)
    return store, exp


def test_a_backup_record_re_renders_only_its_tenant(tmp_path: Path) -> None:
    store, exp = filled(tmp_path)
    exp.collector.render_gzip()
    tables = exp.collector.tables
    before = {name: t.rendered for name, t in tables.items()}
    assert before["backups"] == len(TENANTS) and before["probes"] == len(TENANTS)
    exp.collector.render_gzip()
    assert {name: t.rendered for name, t in tables.items()} == before  # steady: nothing re-rendered
    store.record_backup(BackupResult("commune-007", "mail", False, NOW, 1.0, detail="borg: lock"))
    exp.collector.render()
    after = {name: t.rendered for name, t in tables.items()}
    assert after == {**before, "backups": before["backups"] + 1}
    got = samples(exp.collector.render())
    assert got[("tnoctl_backup_last_failed", (("component", "mail"), ("tenant", "commune-007")))] == 1
    assert got[("tnoctl_backup_last_failed", (("component", "mail"), ("tenant", "commune-008")))] == 0


def test_probe_results_re_render_only_their_tenants_and_blocks(tmp_path: Path) -> None:
    _store, exp = filled(tmp_path)
    exp.collector.render_gzip()
    table = exp.collector.tables["probes"]
    rendered = table.rendered
    old = {(i, b): m for (i, b), m in table._gz.items()}
    exp.cache.put(ProbeResult("commune-042", "mail", "imaps", False, 3.0, "timeout"), NOW + 60)
    exp.cache.put(ProbeResult("commune-043", "mail", "imaps", True, 0.02), NOW + 60)
    body = exp.collector.render_gzip()
    assert table.rendered == rendered + 2
    changed = {block_of("commune-042"), block_of("commune-043")}
    for (index, block), member in table._gz.items():
        if block not in changed:
            assert member is old[(index, block)]  # the same compressed bytes, not recompressed
    got = samples(gzip.decompress(body).decode())  # several gzip members read as one stream
    assert got[("tnoctl_probe_success", (("check", "imaps"), ("component", "mail"), ("tenant", "commune-042")))] == 0
    assert no_self(got) == no_self(samples(exp.collector.render()))


def test_incremental_output_equals_a_fresh_full_render(tmp_path: Path) -> None:
    store, exp = filled(tmp_path)
    exp.collector.render()
    store.record_drift(DriftRecord("commune-001", "mail", True, 2, NOW))
    store.record_backup(BackupResult("ghost", "mail", True, NOW, 1.0))  # unknown tenant: counted, not exported
    exp.cache.put(ProbeResult("commune-100", "mail", "smtp", False, 1.0, "refused"), NOW + 1)
    exp.cache.retain({(t, "mail", c) for t in TENANTS if t != "commune-199" for c in ("smtp", "imaps")})
    incremental = samples(exp.collector.render())
    fresh = exporter_app.build(tmp_path, lambda: KNOWN, probes=lambda: [])
    for result in exp.cache.snapshot():
        fresh.cache.put(result.result, result.ran_at)
    full = samples(fresh.collector.render())
    assert no_self(incremental) == no_self(full)
    assert not any(dict(k[1]).get("tenant") in ("ghost",) for k in incremental)
    assert not any(dict(k[1]).get("tenant") == "commune-199" and k[0] == "tnoctl_probe_success" for k in incremental)
    assert incremental[("tnoctl_store_unknown_tenant_records", (("kind", "backups"),))] == 1


def test_probe_view_holds_rows_only_and_probes_the_same(monkeypatch) -> None:
    from tnoctl import paths
    from tnoctl.config import validate
    from tnoctl.config.load import TenantRow, load_inventory
    from tnoctl.probes import targets

    inv = load_inventory(paths.LAB_INVENTORY)
    parsed: list[str] = []
    real = validate.check_tenant_file
    monkeypatch.setattr(validate, "check_tenant_file", lambda path, *a, **k: parsed.append(path) or real(path, *a, **k))
    view = exporter_app.probe_view(inv)
    assert all(isinstance(t, TenantRow) for t in view.tenants) and parsed == []  # no file parsed, no mailbox kept
    assert [t.slug for t in view.tenants] == [t.slug for t in inv.tenants]
    assert [targets.canary(t) for t in view.tenants] == [targets.canary(t) for t in inv.tenants]
    opts = targets.ProbeOptions()
    assert ([(p.tenant, p.check) for p in targets.network_probes(view, opts)]
            == [(p.tenant, p.check) for p in targets.network_probes(inv, opts)])


def test_concurrent_scrapes_while_results_arrive(tmp_path: Path) -> None:
    import threading

    _store, exp = filled(tmp_path)
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            for _ in range(10):
                gzip.decompress(exp.collector.render_gzip())
                exp.collector.render()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=scrape) for _ in range(3)]
    for t in threads:
        t.start()
    for i, tenant in enumerate(TENANTS * 2):
        exp.cache.put(ProbeResult(tenant, "mail", "smtp", i % 2 == 0, 0.01), NOW + i)
    for t in threads:
        t.join()
    assert not errors
    assert no_self(samples(gzip.decompress(exp.collector.render_gzip()).decode())) == no_self(
        samples(exp.collector.render()))


def test_the_worker_renders_results_as_they_arrive(tmp_path: Path) -> None:
    from tnoctl.probes.base import Probe

    probes = [Probe(t, "mail", "smtp", lambda _t, t=t: ProbeResult(t, "mail", "smtp", True, 0.01)) for t in TENANTS]
    exp = exporter_app.build(tmp_path, lambda: KNOWN, lambda: probes)
    assert exp.worker is not None
    exp.worker.run_once()  # ends with the collector's prerender
    table = exp.collector.tables["probes"]
    assert table.rendered == len(TENANTS)
    exp.collector.render_gzip()
    assert table.rendered == len(TENANTS)  # the scrape found nothing left to render


def test_packed_lines_round_trip_whatever_a_label_value_holds() -> None:
    """Each tenant's lines are kept compressed (35,000 communes: ~230 MiB of text otherwise); the packing
    has no separator a hostile label value could forge (NUL, newlines, non-ASCII), and empty families stay."""
    from tnoctl.exporter.incremental import pack, unpack

    chunk = ('tno_x{reason="a\x00b"} 1.0\n', "", 'tno_y{v="é\\n\x00\x00"} 2.0\n' * 50)
    blob = pack(chunk)
    assert unpack(blob, 3) == list(chunk)
    assert pack(chunk) == blob  # deterministic: an unchanged render keeps the blocks' gzip members
    assert len(blob) < len("".join(chunk).encode())
