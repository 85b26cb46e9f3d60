"""tno_acme's tno_acme_lineages.py on a fake /etc/letsencrypt (#15): stale tenant lineages are removed.

A tenant offboarded or moved away kept its lineage on the old host, renewed by certbot.timer forever.
The script reads the host's ``tno-*`` lineages once (what issuance needs: which have a certificate) and,
with --prune, removes those not kept: ``certbot delete`` (a stand-in here that logs its argv and removes
the lineage as certbot does), the names file and the nginx snippet. Never a lineage not named tno-*;
--check lists and removes nothing; a failed certbot delete exits 1 after trying the others.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tnoctl import paths

SCRIPT = paths.PROJECT_ROOT / "roles" / "tno_acme" / "files" / "tno_acme_lineages.py"
CERTBOT = """#!/bin/sh
# certbot delete --non-interactive --config-dir DIR --cert-name NAME (what the script passes)
echo "$*" >> "$(dirname "$0")/certbot.log"
[ "$5" = --cert-name ] || exit 2
[ "$6" != tno-broken ] || exit 1
rm -rf "$4/live/$6" "$4/archive/$6" "$4/renewal/$6.conf"
"""


@pytest.fixture()
def host(tmp_path: Path) -> Path:
    """Lineages givors (kept), bron (left), broken (left, certbot fails), and other.example (not ours)."""
    conf = tmp_path / "le"
    for name in ("tno-givors", "tno-bron", "other.example"):
        (conf / "live" / name).mkdir(parents=True)
        (conf / "live" / name / "fullchain.pem").write_text("pem")
        (conf / "renewal").mkdir(exist_ok=True)
        (conf / "renewal" / f"{name}.conf").write_text("renewal")
    (conf / "renewal" / "tno-broken.conf").write_text("renewal")
    (tmp_path / "state").mkdir()
    (tmp_path / "nginx").mkdir()
    for slug in ("givors", "bron", "broken", "gone"):  # gone: only leftovers of an earlier removal
        (tmp_path / "state" / f"tno-{slug}.names").write_text("names\n")
        (tmp_path / "nginx" / f"tno-acme-{slug}.conf").write_text("snippet")
    (tmp_path / "nginx" / "tno-office.conf").write_text("vhost")
    (tmp_path / "certbot").write_text(CERTBOT)
    (tmp_path / "certbot").chmod(0o755)
    return tmp_path


def _run(host: Path, *flags: str, keep: tuple[str, ...] = ("tno-givors",)) -> subprocess.CompletedProcess[str]:
    argv = ["/usr/bin/python3", str(SCRIPT), *flags, "--certbot", str(host / "certbot"), str(host / "le"),
            str(host / "state"), str(host / "nginx"), *keep]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def _files(host: Path) -> list[str]:
    return sorted(str(p.relative_to(host)) for p in host.rglob("*") if p.is_file() and p.name != "certbot.log")


def test_read_lists_issued_and_stale_lineages_and_changes_nothing(host: Path) -> None:
    before = _files(host)
    proc = _run(host, keep=("tno-givors", "tno-new"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"live": ["tno-givors"], "stale": ["tno-broken", "tno-bron", "tno-gone"],
                                       "deleted": []}
    assert _files(host) == before and not (host / "certbot.log").exists()


def test_check_mode_lists_what_it_would_delete_and_deletes_nothing(host: Path) -> None:
    before = _files(host)
    proc = _run(host, "--prune", "--check")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deleted"] == ["tno-broken", "tno-bron", "tno-gone"]
    assert _files(host) == before and not (host / "certbot.log").exists()


def test_prune_deletes_stale_tno_lineages_only_and_fails_loudly_on_a_certbot_error(host: Path) -> None:
    proc = _run(host, "--prune")
    assert proc.returncode == 1
    assert "certbot delete --cert-name tno-broken failed" in proc.stderr
    assert json.loads(proc.stdout)["deleted"] == ["tno-bron", "tno-gone"]
    log = (host / "certbot.log").read_text().splitlines()
    assert log == [f"delete --non-interactive --config-dir {host / 'le'} --cert-name tno-broken",
                   f"delete --non-interactive --config-dir {host / 'le'} --cert-name tno-bron"]
    assert _files(host) == [
        "certbot", "le/live/other.example/fullchain.pem", "le/live/tno-givors/fullchain.pem",
        "le/renewal/other.example.conf", "le/renewal/tno-broken.conf", "le/renewal/tno-givors.conf",
        "nginx/tno-acme-broken.conf", "nginx/tno-acme-givors.conf", "nginx/tno-office.conf",
        "state/tno-broken.names", "state/tno-givors.names"]  # broken kept whole: the next deploy retries it
    (host / "le" / "renewal" / "tno-broken.conf").unlink()  # e.g. the operator removed it by hand
    again = _run(host, "--prune")
    assert again.returncode == 0 and json.loads(again.stdout)["deleted"] == ["tno-broken"]
    assert json.loads(_run(host, "--prune").stdout) == {"live": ["tno-givors"], "stale": [], "deleted": []}


def test_a_host_without_certbot_yet_has_no_lineages(tmp_path: Path) -> None:
    argv = ["/usr/bin/python3", str(SCRIPT), "--prune", str(tmp_path / "le"), str(tmp_path / "state"),
            str(tmp_path / "nginx"), "tno-givors"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, json.loads(proc.stdout)) == (0, {"live": [], "stale": [], "deleted": []})


def test_a_kept_name_that_is_not_a_lineage_is_refused(host: Path) -> None:
    proc = _run(host, "--prune", keep=("tno-givors", "../etc"))
    assert proc.returncode == 2 and "../etc" in proc.stderr and proc.stdout == ""


def test_site_removes_departed_lineages_only_after_the_roles_that_used_them():
    """Deleting a lineage before tno_mail/tno_proxy rewrote the vhosts including its nginx snippet would make
    `nginx -t` (the deploy hook's, the roles' handlers') fail on the old vhost: the removal is a later play."""
    plays = yaml.safe_load((paths.PROJECT_ROOT / "playbooks" / "site.yml").read_text())
    names = [p["name"] for p in plays]
    prune = next(i for i, n in enumerate(names) if n.startswith("Certificates of tenants that left"))
    for role in ("tno_acme", "tno_mail", "tno_proxy"):
        assert any(r["role"] == role for p in plays[:prune] for r in p.get("roles", [])), role
    (task,) = plays[prune]["tasks"]
    assert task["ansible.builtin.include_role"] == {"name": "tno_acme", "tasks_from": "prune_lineages.yml"}
    assert plays[prune]["hosts"] == "mail:proxy"
    # deploy only: playbooks/check.yml imports site.yml with tno_action=check (read-only)
    assert task["when"] == "tno_tls_mode | default('files') == 'acme' and tno_action | default('deploy') == 'deploy'"
    (remove,) = yaml.safe_load((SCRIPT.parent.parent / "tasks" / "prune_lineages.yml").read_text())
    assert remove["check_mode"] is False
    assert "'--check' if ansible_check_mode" in remove["ansible.builtin.script"]["cmd"]
    assert "__tno_acme_present.stdout" in remove["when"]  # no execution unless the deploy's read found one
