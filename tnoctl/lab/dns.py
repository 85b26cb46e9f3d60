"""The lab's authoritative DNS server: Knot DNS (`knotd`) on 198.18.0.1:53, zones from the lab inventory.

Why: production publishes MX/SPF/DKIM/DMARC/MTA-STS records by RFC 2136 and validates ACME DNS-01
challenges against real DNS, so the lab needs a real authoritative server that accepts TSIG-signed
dynamic updates. One zone per lab tenant domain plus ``lab.test`` (hosts, ``ns``, ``acme``); lab hosts
resolve through it (resolv.conf written at boot, like /etc/hosts). The TSIG secret is read from the
lab inventory's vault (``tno_vault_dns_tsig_key``, the name the platform setting
``tno_dns_tsig_secret_vault`` gives), so `tnoctl dns publish` and certbot's credentials file
use exactly the key knotd checks: one source, no lab branch in product code.

Zones are made at `lab up` from the inventory's tenants. A commune added later (`tenant add` then
`tenant onboard`, tests/e2e/test_zw_onboard_fifth_commune.py) needs its zone first, as in production,
where the operator creates the commune's zone at the DNS server before onboarding (RFC 2136 cannot
create a zone): `Lab.serve_new_zones` adds the missing ones to the running knotd (`add_zones`: zone
files, knot.conf's zone list, `knotc reload`, which keeps what was published in the other zones),
`Lab.drop_zones` removes them again.

knotd runs in the foreground (PID-tracked by tnoctl.lab.procs) as root only to bind port 53; its
configuration's ``user: knot:knot`` makes it drop privileges right after binding. Rendering is pure
and unit-tested; only `start_knot` touches the system.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from tnoctl.config.maildocs import MAIL_NAMES, OFFICE_NAMES
from tnoctl.errors import OperationFailed
from tnoctl.lab import procs
from tnoctl.lab.etchosts import GATEWAY, LAB_DOMAIN
from tnoctl.lab.topology import Topology

DNS_PORT = 53
TSIG_KEY_NAME = "tno-lab-update."
TSIG_ALGORITHM = "hmac-sha256"
TSIG_VAULT_NAME = "tno_vault_dns_tsig_key"
KNOT_USER = "knot"
ACME_NAME = f"acme.{LAB_DOMAIN}"
"""Name of the lab ACME CA's listener (pebble), certified by the lab CA (see tnoctl.lab.acme)."""

Record = tuple[str, str, str]
"""(owner name relative to the zone or "@", type, value in zone-file syntax)."""


def lab_zones(topology: Topology) -> dict[str, list[Record]]:
    """zone → records: ``lab.test`` (hosts, ns, acme) and every tenant domain's service names (pure).

    Tenant zones get only what the lab itself must resolve (the service names pointing at the host that
    serves them); mail records (MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV) are *published* by `tnoctl dns
    publish`, which is what the e2e test proves.
    """
    address = {host.name: host.address for host in topology.hosts}
    lab: list[Record] = [("ns", "A", GATEWAY), ("labgw", "A", GATEWAY), ("acme", "A", GATEWAY)]
    lab += [(host.name, "A", host.address) for host in topology.hosts]
    zones: dict[str, list[Record]] = {LAB_DOMAIN: lab}
    for tenant in topology.tenants:
        for domain in tenant.domains:
            records = zones.setdefault(domain, [])
            if tenant.mail_host in address:
                ip = address[tenant.mail_host]
                records += [(svc, "A", ip) for svc in MAIL_NAMES]
            if tenant.office_host in address:
                ip = address[tenant.office_host]
                records += [(svc, "A", ip) for svc in OFFICE_NAMES]
    return {zone: list(dict.fromkeys(records)) for zone, records in zones.items()}


def render_zone(zone: str, records: Iterable[Record], serial: int) -> str:
    """The zone file of `zone` (SOA + NS at the apex, then `records`) (pure)."""
    lines = [
        f"$ORIGIN {zone}.",
        "$TTL 60",
        f"@ IN SOA ns.{LAB_DOMAIN}. hostmaster.{LAB_DOMAIN}. {serial} 60 30 3600 30",
        f"@ IN NS ns.{LAB_DOMAIN}.",
    ]
    lines += [f"{name} IN {rtype} {value}" for name, rtype, value in records]
    return "\n".join(lines) + "\n"


def render_knot_conf(run_dir: Path, zones: Iterable[str], tsig_secret: str) -> str:
    """knot.conf: listen on the gateway only, one zone per name, updates only with the TSIG key (pure).

    The secret is in this file (0600, owned by knot): knotd has no other way to learn it.
    """
    lines = [
        "# written by tnoctl lab up; removed by tnoctl lab down",
        "server:",
        f'    rundir: "{run_dir}"',
        f"    user: {KNOT_USER}:{KNOT_USER}",
        f"    listen: {GATEWAY}@{DNS_PORT}",
        "log:",
        "  - target: stderr",
        "    any: info",
        "database:",
        f'    storage: "{run_dir / "db"}"',
        "control:",
        f'    listen: "{run_dir / "knot.sock"}"',
        "key:",
        f"  - id: {TSIG_KEY_NAME}",
        f"    algorithm: {TSIG_ALGORITHM}",
        f"    secret: {tsig_secret}",
        "acl:",
        "  - id: tsig_update",
        f"    key: {TSIG_KEY_NAME}",
        "    action: update",
        "template:",
        "  - id: default",
        f'    storage: "{run_dir / "zones"}"',
        '    file: "%s.zone"',
        "    zonefile-sync: -1",
        "    zonefile-load: whole",
        "    journal-content: none",
        "    acl: tsig_update",
        "zone:",
    ]
    lines += [f"  - domain: {zone}." for zone in zones]
    return "\n".join(lines) + "\n"


def render_resolv_conf() -> str:
    """/etc/resolv.conf of every lab host: the lab DNS only (no search domain, no public resolver)."""
    return (f"# written by tnoctl lab at every boot: the lab's authoritative DNS\n"
            f"nameserver {GATEWAY}\noptions timeout:2\n")


def valid_tsig_secret(secret: str) -> bool:
    """True for a base64 secret of at least 32 bytes (an HMAC-SHA256 key) with no whitespace (pure)."""
    import base64
    import binascii

    if not secret or any(c.isspace() for c in secret):
        return False
    try:
        return len(base64.b64decode(secret, validate=True)) >= 32
    except (binascii.Error, ValueError):
        return False


def start_knot(run_dir: Path, topology: Topology, tsig_secret: str, serial: int | None = None) -> procs.ProcRecord:
    """Write config + zones under `run_dir` and start knotd (foreground, detached); return its record."""
    knotd = shutil.which("knotd") or "/usr/sbin/knotd"
    if not Path(knotd).exists():
        raise OperationFailed("knotd is not installed (apt-get install knot)")
    if not valid_tsig_secret(tsig_secret):
        raise OperationFailed(f"the lab vault's {TSIG_VAULT_NAME} is not a base64 key of at least 32 bytes")
    shutil.rmtree(run_dir / "zones", ignore_errors=True)
    shutil.rmtree(run_dir / "db", ignore_errors=True)
    (run_dir / "zones").mkdir(parents=True)
    (run_dir / "db").mkdir()
    zones = lab_zones(topology)
    serial = serial or int(time.time())
    for zone, records in zones.items():
        (run_dir / "zones" / f"{zone}.zone").write_text(render_zone(zone, records, serial))
    conf = run_dir / "knot.conf"
    conf.touch(mode=0o600)
    conf.chmod(0o600)
    conf.write_text(render_knot_conf(run_dir, zones, tsig_secret))
    for path in (run_dir, conf, *(run_dir / "zones").iterdir(), run_dir / "db", run_dir / "zones"):
        shutil.chown(path, KNOT_USER, KNOT_USER)
    pid = procs.spawn_detached([knotd, "-c", str(conf)], run_dir / "console.log")
    record = procs.record_for(pid, marker=str(conf), program="knotd")
    from tnoctl.lab.aptproxy import wait_port

    if not wait_port(GATEWAY, DNS_PORT, 15, record):
        raise OperationFailed(f"knotd did not listen on {GATEWAY}:{DNS_PORT} (see {run_dir / 'console.log'})")
    return record


_ZONE_LINE = re.compile(r"^  - domain: (\S+)\.$", re.M)


def served_zones(conf_text: str) -> list[str]:
    """The zones a knot.conf rendered by :func:`render_knot_conf` serves, in order (pure)."""
    return _ZONE_LINE.findall(conf_text)


def with_zone_list(conf_text: str, zones: Iterable[str]) -> str:
    """That knot.conf with its zone list replaced by ``zones`` (everything before ``zone:`` kept) (pure)."""
    head, sep, _old = conf_text.partition("\nzone:\n")
    if not sep:
        raise OperationFailed("the lab's knot.conf has no zone list (not written by tnoctl lab up?)")
    return head + sep + "".join(f"  - domain: {zone}.\n" for zone in zones)


def add_zones(run_dir: Path, zones: dict[str, list[Record]], serial: int | None = None) -> list[str]:
    """Serve the zones of ``zones`` that knotd does not serve yet, without restarting it; return them.

    Zone files first, then knot.conf's zone list, then `knotc reload` (re-reads the configuration and
    only the zone files that changed: records published by RFC 2136 into the other zones stay), then a
    wait until each new zone answers its SOA.
    """
    conf = run_dir / "knot.conf"
    text = conf.read_text()
    served = served_zones(text)
    new = {zone: records for zone, records in zones.items() if zone not in served}
    if not new:
        return []
    serial = serial or int(time.time())
    for zone, records in new.items():
        path = run_dir / "zones" / f"{zone}.zone"
        path.write_text(render_zone(zone, records, serial))
        shutil.chown(path, KNOT_USER, KNOT_USER)
    conf.write_text(with_zone_list(text, [*served, *new]))  # same file: mode 0600 and owner kept
    _reload(run_dir)
    for zone in new:
        _wait_soa(zone, run_dir)
    return list(new)


def remove_zones(run_dir: Path, names: Iterable[str]) -> list[str]:
    """Stop serving ``names`` (knot.conf, `knotc reload`, zone files deleted); return those removed."""
    conf = run_dir / "knot.conf"
    text = conf.read_text()
    served = served_zones(text)
    gone = [zone for zone in served if zone in set(names)]
    if not gone:
        return []
    conf.write_text(with_zone_list(text, [zone for zone in served if zone not in gone]))
    _reload(run_dir)
    for zone in gone:
        (run_dir / "zones" / f"{zone}.zone").unlink(missing_ok=True)
    return gone


def _reload(run_dir: Path) -> None:
    knotc = shutil.which("knotc") or "/usr/sbin/knotc"
    done = subprocess.run([knotc, "-s", str(run_dir / "knot.sock"), "reload"], capture_output=True, text=True,
                          timeout=30, check=False)
    if done.returncode != 0:
        raise OperationFailed(f"knotc reload failed (rc {done.returncode}): {done.stderr.strip()[-300:]}")


ZONE_LOAD_TIMEOUT = 15.0
"""knotd loads zones after `knotc reload` returns, in its background workers: how long a load may take."""


def _wait_soa(zone: str, run_dir: Path) -> None:
    """Return once knotd answers the SOA of ``zone`` (loaded); OperationFailed after ZONE_LOAD_TIMEOUT."""
    from tnoctl.run.dnsclient import DnspythonClient

    client = DnspythonClient(f"{GATEWAY}:{DNS_PORT}", timeout=2)
    deadline = time.monotonic() + ZONE_LOAD_TIMEOUT
    while True:
        try:
            if client.query(f"{zone}.", "SOA"):
                return
        except OperationFailed:  # REFUSED/NOTAUTH until the zone is loaded
            pass
        if time.monotonic() > deadline:
            raise OperationFailed(f"knotd does not serve {zone} {ZONE_LOAD_TIMEOUT:.0f}s after a reload "
                                  f"(see {run_dir / 'console.log'})")
        time.sleep(0.2)
