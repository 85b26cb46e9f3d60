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
