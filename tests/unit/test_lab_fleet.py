"""The embedded lab fleet (issue 20): every tenant shape, on both mail and both office hosts.

`make demo` and the whole e2e suite run on inventories/lab; these checks keep its variety from
eroding: a tenant with mail and office, a mail-only one, an office-only one, one with three mail
domains (mailboxes in each), and each mail and office host serving a different mix.
"""

from __future__ import annotations

from tnoctl import paths
from tnoctl.config.load import load_inventory
from tnoctl.lab import etchosts, topology


def _inv():
    return load_inventory(paths.LAB_INVENTORY, paths.LAB_INVENTORY / "vault-password")


def test_the_four_original_communes_are_kept_with_their_insee_codes() -> None:
    insee = {t.slug: t.insee for t in _inv().tenants}
    assert {k: insee[k] for k in ("corbas", "givors", "vaulx-en-velin", "venissieux")} == {
        "corbas": "69273", "givors": "69091", "vaulx-en-velin": "69256", "venissieux": "69259"}
    assert (insee["bron"], insee["feyzin"], insee["saint-fons"]) == ("69029", "69276", "69199")


def test_every_tenant_shape_is_present() -> None:
    inv = _inv()
    shapes = {t.slug: tuple(t.services) for t in inv.tenants}
    assert shapes["bron"] == ("office",) and inv.tenant("bron").mailboxes == []
    assert shapes["feyzin"] == ("mail",)
    three = inv.tenant("saint-fons")
    assert len(three.domains) == 3
    assert {m.domain or three.primary_domain for m in three.mailboxes} == set(three.domains)  # a mailbox in each
    assert sum(1 for s in shapes.values() if s == ("mail", "office")) >= 4


def test_both_mail_hosts_and_both_office_hosts_get_variety() -> None:
    inv = _inv()
    def mix(host: str, service: str) -> set[tuple[str, ...]]:
        return {(tuple(t.services), len(t.domains)) for t in inv.tenants if getattr(t.placement, service) == host
                and service in t.services}
    assert mix("mail1", "mail") == {(("mail", "office"), 1), (("mail", "office"), 3)}
    assert mix("mail2", "mail") == {(("mail", "office"), 1), (("mail",), 1)}
    assert mix("office1", "office") == {(("mail", "office"), 1), (("office",), 1)}
    assert mix("office2", "office") == {(("mail", "office"), 1), (("mail", "office"), 3)}
    crossed = inv.tenant("saint-fons").placement
    assert (crossed.mail, crossed.office) == ("mail1", "office2")


def test_lab_certificates_and_hosts_file_name_every_domain_of_every_service() -> None:
    topo = topology.load(paths.LAB_INVENTORY)
    sans = etchosts.cert_sans(topo)
    for domain in ("saint-fons.test", "ccas-saint-fons.test", "mediatheque-saint-fons.test"):
        assert {f"mail.{domain}", f"smtp.{domain}", f"imap.{domain}"} <= set(sans["mail1"])
        assert f"office.{domain}" in sans["office2"]
    assert "office.bron.test" in sans["office1"] and not any("bron" in n for n in sans["mail1"] + sans["mail2"])
    assert "mail.feyzin.test" in sans["mail2"] and not any("feyzin" in n for n in sans["office1"] + sans["office2"])
