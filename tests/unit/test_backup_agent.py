"""Host agent pure parts: userdb filtering, borgmatic stats, textfile, failure carrying the last success."""

from __future__ import annotations

import json
from pathlib import Path

from tnoctl.hostagent import agent

USERDB = """# managed
alice@a.test:{SHA512-CRYPT}$6$x::::::
Bob@A.test:{SHA512-CRYPT}$6$y::::::
carol@b.test:{SHA512-CRYPT}$6$z::::::
"""


def test_userdb_lines_keep_only_the_tenant_domains() -> None:
    assert agent.userdb_lines(USERDB, ["a.test"]) == [
        "alice@a.test:{SHA512-CRYPT}$6$x::::::", "Bob@A.test:{SHA512-CRYPT}$6$y::::::"]
    assert agent.userdb_lines(USERDB, ["c.test"]) == []


def test_create_stats_from_borgmatic_json() -> None:
    out = json.dumps([{"archive": {"name": "t-1", "stats": {"original_size": 10, "compressed_size": 7,
                                                             "deduplicated_size": 3, "nfiles": 2}}}])
    assert agent.create_stats(out) == {"archive": "t-1", "original_bytes": 10, "compressed_bytes": 7,
                                       "deduplicated_bytes": 3, "files": 2}


def test_failure_keeps_last_success_and_success_clears_it() -> None:
    ok = agent.next_state(None, agent.RunState("t", True, 100.0, 5.0, archive="t-1", original_bytes=10))
    failed = agent.next_state(ok, agent.RunState("t", False, 200.0, 1.0, detail="host down"))
    assert (failed.ok, failed.last_success_at, failed.original_bytes, failed.archive) == (False, 100.0, 10, "t-1")
    text = agent.render_textfile(failed)
    assert 'tnoctl_backup_last_run_success{tenant="t",component="mail"} 0.0' in text
    assert 'tnoctl_backup_last_success_timestamp_seconds{tenant="t",component="mail"} 100.0' in text
    again = agent.next_state(failed, agent.RunState("t", True, 300.0, 2.0))
    assert 'tnoctl_backup_last_run_success{tenant="t",component="mail"} 1.0' in agent.render_textfile(again)
    assert again.last_success_at == 300.0


def test_atomic_write_replaces_without_temp_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "d" / "x.prom"
    agent.atomic_write(target, "a\n")
    agent.atomic_write(target, "b\n")
    assert target.read_text() == "b\n" and sorted(p.name for p in target.parent.iterdir()) == ["x.prom"]


def test_create_argv_names_a_tagged_snapshot() -> None:
    cfg = agent.TenantConfig("g", "/etc/borgmatic.d/g.yaml", "/t")
    assert agent.create_argv(cfg) == ["borgmatic", "--config", "/etc/borgmatic.d/g.yaml", "create", "--json"]
    office = agent.TenantConfig("g", "/etc/borgmatic.d/g.office.yaml", "/t", component="office")
    assert office.key == "g.office"
    assert agent.create_argv(office, "pre-upgrade-9")[3:5] == [
        "--override", "storage.archive_name_format='g.office.tag-pre-upgrade-9-{now:%Y-%m-%dT%H:%M:%S.%f}'"]


def test_office_config_loads_without_mail_fields(tmp_path: Path) -> None:
    (tmp_path / "g.office.json").write_text(json.dumps(
        {"slug": "g", "component": "office", "borgmatic_config": "/b", "textfile_dir": "/t", "retention": {}}))
    cfg = agent.TenantConfig.load("g.office", tmp_path)
    assert (cfg.key, cfg.mailboxes, cfg.staging) == ("g.office", [], "")
    text = agent.render_textfile(agent.RunState("g", True, 1.0, 1.0), cfg.component)
    assert 'tnoctl_backup_last_run_success{tenant="g",component="office"} 1.0' in text


def test_main_refuses_bad_usage_and_bad_tags(capsys) -> None:
    assert agent.main(["run"]) == 2
    assert agent.main(["run", "g", "--tag", "bad tag"]) == 2
    assert "invalid backup tag" in capsys.readouterr().err
