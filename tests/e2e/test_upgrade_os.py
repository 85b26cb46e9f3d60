"""`tnoctl upgrade os` on the session fleet (issue 16, item 1): a canary rolled back, then the real updates.

Why: the lab base is debootstrapped from the release suite (tnoctl/lab/base.py) while its sources list
bookworm-updates and bookworm-security, so every lab host has real pending Debian updates through the
apt proxy. This proves, on the hosts the other e2e tests deployed (the session fleet, no second deploy):

1. an injected failure (a service that does not come back with the new version of one package) fails the
   canary's gate, tnoctl puts the canary's packages back to the recorded versions (downgrades from the
   mirror), the service runs again, and no other host changed at all (full ``dpkg-query -W`` compared);
2. the rollout then applies every pending update, canary first then the rest: apt reports nothing
   upgradable afterwards, every host's gate passed (its tenants' probes), and each host's tno_os.prom
   (role tno_monitoring) reports whether a reboot is pending.

The injection is plain Debian/systemd, no test hook in tnoctl: a unit that refuses to run when the chosen
package is newer than its recorded version, restarted by an apt ``DPkg::Post-Invoke`` hook after each
dpkg run (as a package's postinst restarts its daemon). Budget: about 2-4 minutes (one apt run per host,
plus the canary's rollback); measure with ``pytest --durations``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = [pytest.mark.root, pytest.mark.lab]

UNIT = "tno-e2e-canary.service"
SCRIPT = "/usr/local/sbin/tno-e2e-canary"
HOOK = "/etc/apt/apt.conf.d/99tno-e2e-canary"
WAVES = "canary,100%"


def _installed(fleet: Any, host: str) -> dict[str, str]:
    out = fleet.ssh(host, "dpkg-query", "-W", "-f", "${Package}\\t${Version}\\n").stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _upgradable(fleet: Any, host: str) -> list[str]:
    out = fleet.ssh(host, "apt-get", "-s", "-q", "upgrade").stdout
    return [line.split()[1] for line in out.splitlines() if re.match(r"^Inst \S+ \[", line)]


def _plan(fleet: Any) -> dict[str, Any]:
    rc, out, err = fleet.tnoctl("upgrade", "os", "--waves", WAVES, "--dry-run", "--json")
    assert rc == 0, err
    return json.loads(out)


def _inject(fleet: Any, host: str, package: str, version: str) -> None:
    """A service that runs only while ``package`` is at most ``version``; apt restarts it after each dpkg run."""
    script = ("#!/bin/sh\n"
              f"now=$(dpkg-query -W -f '${{Version}}' {package})\n"
              f"dpkg --compare-versions \"$now\" le '{version}' || {{ echo \"{package} $now breaks me\"; exit 1; }}\n"
              "exec sleep infinity\n")
    unit = ("[Unit]\nDescription=tnoctl e2e: a service broken by a newer package\nStartLimitIntervalSec=0\n"
            f"[Service]\nExecStart={SCRIPT}\n[Install]\nWantedBy=multi-user.target\n")
    # restart, not try-restart: after the rollback the unit is failed, and must be started again
    hook = f'DPkg::Post-Invoke {{ "systemctl restart {UNIT} || true"; }};\n'
    for path, content, mode in ((SCRIPT, script, "0755"), (f"/etc/systemd/system/{UNIT}", unit, "0644"),
                                (HOOK, hook, "0644")):
        fleet.ssh(host, "sh", "-c", f"cat > {path} <<'EOF'\n{content}EOF\nchmod {mode} {path}")
    fleet.ssh(host, "systemctl", "daemon-reload")
    fleet.ssh(host, "systemctl", "start", UNIT)
    assert fleet.ssh(host, "systemctl", "is-active", UNIT, check=False).stdout.strip() == "active"


def _remove_injection(fleet: Any, host: str) -> None:
    fleet.ssh(host, "systemctl", "stop", UNIT, check=False)
    fleet.ssh(host, "rm", "-f", SCRIPT, f"/etc/systemd/system/{UNIT}", HOOK, check=False)
    fleet.ssh(host, "systemctl", "daemon-reload", check=False)
    fleet.ssh(host, "systemctl", "reset-failed", UNIT, check=False)


@pytest.fixture()
def canary(fleet: Any) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(host, package, recorded version, plan): the first canary host, broken by one of its restorable updates."""
    plan = _plan(fleet)
    assert plan["hosts"], "the lab hosts have no pending Debian update: the base image premise is broken"
    first = plan["hosts"][0]
    assert first["wave_name"] == "canary"
    lost = {item.split()[0] for item in first["not_restorable"]}
    package = next((p for p in sorted(first["packages"]) if p not in lost), None)
    assert package, f"{first['host']}: no pending update whose installed version the mirror still offers"
    version = _installed(fleet, first["host"])[package]
    _inject(fleet, first["host"], package, version)
    yield first["host"], package, version, plan
    _remove_injection(fleet, first["host"])


def test_upgrade_os_rolls_the_broken_canary_back_then_applies_every_update(fleet: Any, canary) -> None:
    host, package, version, plan = canary
    hosts = [h["host"] for h in plan["hosts"]]
    before = {h: _installed(fleet, h) for h in hosts}

    # 1. the canary's service does not come back: rolled back, the rollout halts, nobody else moves
    # only the injected package (and what apt pulls along): every other changed package would also have to
    # be offered by the mirror at its installed version for the rollback (the plan's not_restorable)
    rc, out, err = fleet.tnoctl("upgrade", "os", "--packages", package, "--waves", WAVES, "--batch", "1",
                                "--gate-timeout", "45", "--yes", "--json")
    assert rc == 1, err
    result = json.loads(out)
    assert result["hosts"][host] == "rolled_back", err
    assert next(iter(result["hosts"])) == host  # the canary went first
    assert all(state == "skipped" for h, state in result["hosts"].items() if h != host), result
    after = _installed(fleet, host)
    assert after[package] == version
    # every package the upgrade moved is back (needrestart and its dependencies, new installs, may stay)
    assert {p: after.get(p) for p in before[host]} == before[host]
    assert fleet.ssh(host, "systemctl", "is-active", UNIT, check=False).stdout.strip() == "active"
    for other in hosts[1:]:
        assert _installed(fleet, other) == before[other], f"{other} changed although the canary failed"
    rc, status, err = fleet.tnoctl("upgrade", "status", result["operation"], "--json")
    assert rc == 0 and json.loads(status)["state"] == "finished", err

    # 2. without the injection: canary then the rest, every pending update applied, tenants healthy
    _remove_injection(fleet, host)
    rc, out, err = fleet.tnoctl("upgrade", "os", "--waves", WAVES, "--batch", "3", "--yes", "--json")
    assert rc == 0, err
    result = json.loads(out)
    assert set(result["hosts"].values()) == {"done"}, result
    for name in hosts:
        assert _upgradable(fleet, name) == [], f"{name} still has pending updates"
        prom = fleet.ssh(name, "cat", "/var/lib/prometheus/node-exporter/tno_os.prom").stdout
        flag = fleet.ssh(name, "test", "-e", "/var/run/reboot-required", check=False).returncode == 0
        assert f"tno_os_reboot_required {int(flag)}" in prom
        assert (name in result["reboot_required"]) == flag
    # every tenant's probes passed on each host's gate (tnoctl's probes, as `tnoctl status` runs them)
