"""A tenant's office archive holds its own office configuration only (issue 13: no host-wide secret).

Before: the office unit archived the host's coolwsd.xml (admin console password, every commune's
WOPI hosts), its proof key and the proxy file of every commune into each tenant's repository.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from tnoctl import paths
from tnoctl.backup import office
from tnoctl.hostagent import office_stage

ROLES = Path(paths.__file__).resolve().parent.parent / "roles"
SECRET = "admin-secret-value"  # stands for tno_vault_office_admin_password
TENANTS = [
    {"slug": "givors", "domains": ["givors.test"], "office": {"wopi_hosts": ["https://cloud.givors.test"]}},
    {"slug": "corbas", "domains": ["corbas.test", "corbas2.test"],
     "office": {"wopi_hosts": ["https://cloud.corbas.test", "https://nc.corbas.test"]}},
]


def _render(role: str, name: str, **context: object) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["comment"] = lambda text, *a: f"<!-- {text} -->" if a else f"# {text}"
    return env.from_string((ROLES / role / "templates" / name).read_text()).render(ansible_managed="managed",
                                                                                   **context)


def _coolwsd() -> str:
    return _render("tno_office", "coolwsd.xml.j2", __tno_office_tenants=TENANTS, __tno_office_listen="loopback",
                   tno_office_admin_user="admin", tno_vault_office_admin_password=SECRET)


def _proxy() -> str:
    return _render("tno_proxy", "tno-office.conf.j2", __tno_proxy_tenants=TENANTS, tno_proxy_ipv6=False,
                   tno_proxy_upstream="http://127.0.0.1:9980", tno_proxy_tls_dir="/etc/tno-proxy",
                   tno_proxy_hsts_max_age=1, tno_proxy_admin_port=9443, tno_office_admin_allow=["198.18.0.1"],
                   tno_tls_mode="files")


def test_the_staged_coolwsd_xml_holds_only_the_tenants_alias_group() -> None:
    host = _coolwsd()
    assert SECRET in host and "cloud.givors.test" in host  # what the host file holds
    staged = office_stage.tenant_coolwsd(host, "corbas")
    assert SECRET not in staged and "admin_console" not in staged and "givors" not in staged
    assert "https://cloud.corbas.test" in staged and "https://nc.corbas.test" in staged
    ok, detail = office.check_config(staged)  # what `backup drill` checks after restoring it
    assert ok, detail


def test_the_staged_proxy_file_holds_only_the_tenants_vhosts() -> None:
    staged = office_stage.tenant_vhosts(_proxy(), "corbas")
    assert "server_name office.corbas.test;" in staged and "server_name office.corbas2.test;" in staged
    assert "givors" not in staged and "default_server" not in staged
    assert staged.count("server {") == 2 and staged.count("{") == staged.count("}")
    assert office_stage.tenant_vhosts(_proxy(), "bron") == ""


def test_stage_writes_private_files_and_drops_a_stale_proxy_copy(tmp_path: Path) -> None:
    (tmp_path / "coolwsd.xml").write_text(_coolwsd())
    (tmp_path / "proxy.conf").write_text(_proxy())
    staging = tmp_path / "staging" / "givors.office"
    assert office_stage.stage("givors", staging, tmp_path / "coolwsd.xml", tmp_path / "proxy.conf") == [
        "coolwsd.xml", "tno-office.conf"]
    assert staging.stat().st_mode & 0o777 == 0o700
    assert (staging / "coolwsd.xml").stat().st_mode & 0o777 == 0o600
    assert SECRET not in (staging / "coolwsd.xml").read_text()
    (tmp_path / "proxy.conf").unlink()
    assert office_stage.stage("givors", staging, tmp_path / "coolwsd.xml", tmp_path / "proxy.conf") == [
        "coolwsd.xml"]
    assert not (staging / "tno-office.conf").exists()


def test_the_office_unit_archives_its_staging_tree_not_host_files() -> None:
    text = _render("tno_backup", "borgmatic.yaml.j2", tenant={"slug": "givors", "backup": {
        "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 6}}, __tno_backup_suffix=".office",
        tno_backup_component="office", tno_backup_staging_dir="/var/lib/tno-backup/staging", tno_backup_user="u",
        __tno_backup_address="b", tno_backup_repo_root="/srv/tno-backup", tno_backup_compression="zstd,3")
    assert "- /var/lib/tno-backup/staging/givors.office\n" in text
    assert "/usr/local/sbin/tno-backup stage givors.office" in text
    assert "/etc/coolwsd" not in text and "proof_key" not in text and "/etc/nginx" not in text
    assert office.required_path("givors") == "var/lib/tno-backup/staging/givors.office/coolwsd.xml"


def test_the_agent_stages_an_office_unit_from_its_rendered_config(tmp_path: Path) -> None:
    """`tno-backup stage <slug>.office` (borgmatic's hook) reads tenant.json as the role renders it."""
    import json

    from tnoctl.hostagent import agent

    (tmp_path / "coolwsd.xml").write_text(_coolwsd())
    staging = tmp_path / "staging" / "givors.office"
    (tmp_path / "givors.office.json").write_text(json.dumps({
        "slug": "givors", "component": "office", "staging": str(staging), "coolwsd_xml": str(tmp_path / "coolwsd.xml"),
        "proxy_conf": str(tmp_path / "absent.conf"), "borgmatic_config": "/etc/borgmatic.d/givors.office.yaml",
        "textfile_dir": str(tmp_path), "retention": {"keep_daily": 7}}))
    cfg = agent.TenantConfig.load("givors.office", config_dir=tmp_path)
    assert agent.stage(cfg) == 0
    assert sorted(p.name for p in staging.iterdir()) == ["coolwsd.xml"]
    assert "cloud.givors.test" in (staging / "coolwsd.xml").read_text()
