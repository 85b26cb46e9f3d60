"""`monitoring targets` renders the blackbox file_sd lists as text: exactly what json.dumps(indent=2) writes."""

from __future__ import annotations

import json
from types import SimpleNamespace

from tnoctl.exporter.file_sd import groups, render_groups
from tnoctl.probes.targets import endpoints


def _inventory(n: int):
    hosts = {"mail1": SimpleNamespace(address="198.18.0.11"), "office1": SimpleNamespace(address="198.18.0.21")}
    tenants = [SimpleNamespace(slug=f"t\u00e9-{i}" if i % 7 == 0 else f"t{i}", domains=[f"d{i}.test"],
                               services=("mail", "office") if i % 3 else ("office",),
                               placement=SimpleNamespace(mail="mail1", office="office1" if i % 5 else None))
               for i in range(n)]
    return SimpleNamespace(tenants=tenants, hosts=hosts)


def test_file_sd_text_equals_the_encoded_groups():
    eps = endpoints(_inventory(30))
    for by_address in (False, True):
        expected = groups(eps, by_address)
        for depth in (0, 1, 3):
            got = render_groups(eps, by_address, depth)
            assert list(got) == list(expected)
            for name, body in expected.items():
                assert got[name] == json.dumps(body, indent=2).replace("\n", "\n" + "  " * depth), name
    empty = render_groups([], False, 1)
    assert set(empty) == set(groups([])) and set(empty.values()) == {"[]"}


def _reference_endpoints(inventory) -> list[tuple]:
    """The endpoint walk as first written (one Endpoint per SERVICES entry the tenant has a known host for)."""
    from tnoctl.probes.targets import SERVICES

    out = []
    for t in inventory.tenants:
        for component, service, port, prefix in SERVICES:
            host = getattr(t.placement, component, None)
            if component in t.services and host and host in inventory.hosts:
                out.append((t.slug, component, service, host, inventory.hosts[host].address, port,
                            f"{prefix}.{t.domains[0]}"))
    return out


def test_endpoints_equal_the_reference_walk_and_honour_only():
    inv = _inventory(40)
    inv.tenants[3].placement = SimpleNamespace(mail="nowhere", office="office1")  # an unknown host: skipped
    assert [tuple(ep) for ep in endpoints(inv)] == _reference_endpoints(inv)
    only = [inv.tenants[1].slug, inv.tenants[7].slug]
    assert {ep.tenant for ep in endpoints(inv, only)} == set(only)


def test_monitoring_targets_stdout_equals_the_standard_encoder(tmp_path):
    """The verb writes the files piece by piece: the bytes are those of json.dumps(indent=2) of {file: groups}."""
    import io

    from tnoctl import paths
    from tnoctl.cli import main
    from tnoctl.cli.context import AppContext
    from tnoctl.config.load import load_inventory
    from tnoctl.exporter.file_sd import host_groups

    inv = load_inventory(paths.LAB_INVENTORY)
    eps = endpoints(SimpleNamespace(tenants=inv.rows, hosts=inv.hosts))
    for flags, by_address in (([], False), (["--by-address"], True)):
        out, err = io.StringIO(), io.StringIO()
        rc = main(["--inventory", str(paths.LAB_INVENTORY), "--state-dir", str(tmp_path / "state"), "monitoring",
                   "targets", *flags], AppContext(stdout=out, stderr=err))
        assert rc == 0, err.getvalue()
        assert out.getvalue() == json.dumps({**groups(eps, by_address), **host_groups(inv)}, indent=2) + "\n"


def test_file_sd_text_across_pieces_and_with_names_that_need_escaping():
    """Over BATCH groups per file (several pieces), names with characters JSON escapes, a non-443 HTTPS port."""
    from tnoctl.exporter.file_sd import BATCH, render_chunks
    from tnoctl.probes.endpoints import Endpoint

    inv = _inventory(BATCH + 40)
    inv.tenants[5].domains = ['d"\u00e9\\5.test']
    inv.hosts["office1"].address = "198.18.0.21\u00e9"
    odd_port = Endpoint("t\u00e9x", "office", "https", "office1", "198.18.0.21", 8443, "office.x\u00e9.test")
    eps = [*endpoints(inv), odd_port]
    for by_address in (False, True):
        expected = groups(eps, by_address)
        chunks = {name: list(pieces) for name, pieces in render_chunks(eps, by_address, 1)}
        assert max(len(pieces) for pieces in chunks.values()) > 2  # several pieces of BATCH groups
        for name, body in expected.items():
            assert "".join(chunks[name]) == json.dumps(body, indent=2).replace("\n", "\n  "), name
