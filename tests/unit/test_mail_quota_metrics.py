"""The mail hosts' quota textfile script (role tno_monitoring): per-tenant aggregates, no mailbox names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hostscripts import load_script
from prometheus_client.parser import text_string_to_metric_families

from tnoctl import paths

SCRIPT = paths.ROLES_DIR / "tno_monitoring" / "files" / "tno-mail-quota-metrics.py"
quota = load_script(SCRIPT, "tno_mail_quota_metrics")

# `doveadm -f tab quota get -A` (Dovecot 2.3): STORAGE values and limits in KiB, '-' for no limit
DOVEADM = """username\tquota name\ttype\tvalue\tlimit\t%
alice@alpha.test\tUser quota\tSTORAGE\t950\t1000\t95
alice@alpha.test\tUser quota\tMESSAGE\t12\t-\t0
bob@alt.test\tUser quota\tSTORAGE\t100\t1000\t10
carol@beta.test\tUser quota\tSTORAGE\t10\t-\t0
stranger@elsewhere.test\tUser quota\tSTORAGE\t999\t1000\t99
"""
MAP = "# generated\nalpha.test\talpha\nALT.test\talpha\nbeta.test\tbeta\ngamma.test\tgamma\n"


def test_aggregate_per_tenant() -> None:
    usage = quota.aggregate(DOVEADM, quota.parse_map(MAP))
    assert set(usage) == {"alpha", "beta", "gamma"}
    a = usage["alpha"]
    assert (a.mailboxes, a.used_bytes, a.limit_bytes, a.max_ratio) == (2, 1050 * 1024, 2000 * 1024, 0.95)
    b = usage["beta"]
    assert (b.mailboxes, b.limit_bytes, b.max_ratio) == (1, 0, 0.0)  # no limit: not near any quota
    assert usage["gamma"].mailboxes == 0  # a tenant without mailboxes still gets its series


def test_render_is_valid_exposition_without_mailbox_names() -> None:
    text = quota.render(quota.aggregate(DOVEADM, quota.parse_map(MAP)), 1.7e9)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(fams) == {"tno_mail_quota_used_bytes", "tno_mail_quota_limit_bytes",
                         "tno_mail_quota_mailbox_max_usage_ratio", "tno_mail_quota_mailboxes",
                         "tno_mail_quota_last_run_timestamp_seconds"}
    ratio = {s.labels["tenant"]: s.value for s in fams["tno_mail_quota_mailbox_max_usage_ratio"].samples}
    assert ratio == {"alpha": 0.95, "beta": 0.0, "gamma": 0.0}
    for name in ("alice", "bob", "carol", "stranger", "@"):
        assert name not in text


def test_main_writes_the_file_atomically(tmp_path: Path) -> None:
    """Run as on a host, with a stand-in doveadm first on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "doveadm"
    fake.write_text("#!/bin/sh\ncat <<'EOF'\n" + DOVEADM + "EOF\n")
    fake.chmod(0o755)
    (tmp_path / "map").write_text(MAP)
    out = tmp_path / "tno_mail_quota.prom"
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    res = subprocess.run([sys.executable, str(SCRIPT), "--map", str(tmp_path / "map"), "--out", str(out)],
                         capture_output=True, text=True, check=False, env=env)
    assert res.returncode == 0, res.stderr
    assert 'tno_mail_quota_mailboxes{tenant="alpha"} 2' in out.read_text()
    assert oct(out.stat().st_mode & 0o777) == "0o644" and not list(tmp_path.glob("*.tmp"))
    fake.write_text("#!/bin/sh\necho 'Fatal: no userdb iteration' >&2\nexit 75\n")
    res = subprocess.run([sys.executable, str(SCRIPT), "--map", str(tmp_path / "map"), "--out", str(out)],
                         capture_output=True, text=True, check=False, env=env)
    assert res.returncode == 1 and "doveadm quota get -A failed (75)" in res.stderr
    assert 'tenant="alpha"} 2' in out.read_text()  # the previous file stays
