"""The lab's ACME CA: `pebble` (Let's Encrypt's test server, Debian package) on 198.18.0.1.

Why: certificates per tenant service name are issued in production by a real ACME CA through DNS-01
challenges; the lab runs the same protocol end to end. pebble listens on ``acme.lab.test:14000``
(directory ``/dir``) and its management API on ``:15000``. Its own listener certificate is issued by
the lab CA (tnoctl.lab.ca) for ``acme.lab.test`` + 198.18.0.1, so certbot on lab hosts trusts it like
every other lab service, without pebble's bundled ``localhost`` test certificate. Challenges are
resolved through the lab DNS (``-dnsserver 198.18.0.1:53``); PEBBLE_VA_NOSLEEP=1 removes pebble's
random validation delays. pebble's root changes at every start (it keeps no state): it is fetched
from ``/roots/0`` right after start and written to ``<lab>/ca/acme-root.crt``, which the lab hosts
install next to the lab CA at boot (tnoctl.lab.boot). The controller's clients trust both through
``<lab>/ca/trust.pem`` (tnoctl.paths.lab_ca_bundle): the lab inventory says ``tno_tls_mode: acme``, so
tenant names are served with pebble's certificates and the hosts' own names with the lab CA's.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import time
import urllib.request
from pathlib import Path

from tnoctl.errors import OperationFailed
from tnoctl.lab import procs
from tnoctl.lab.dns import ACME_NAME, DNS_PORT
from tnoctl.lab.etchosts import GATEWAY

ACME_PORT = 14000
MANAGEMENT_PORT = 15000
DIRECTORY_URL = f"https://{ACME_NAME}:{ACME_PORT}/dir"
ROOT_FILE = "acme-root.crt"
TRUST_FILE = "trust.pem"
"""Lab CA + pebble's current root in one PEM file: what lab clients (probes, tests, `lab smoke`) trust."""
CERT_SANS = [ACME_NAME, GATEWAY]
"""SANs of pebble's listener certificate (issued by the lab CA under the name `acme`)."""


def certbot_accounts_dir() -> str:
    """Where certbot keeps a host's accounts at the lab CA, relative to the host's root (pure).

    certbot files accounts under ``/etc/letsencrypt/accounts/<host:port>/<path>`` of the directory URL.
    pebble keeps no state: after a restart the accounts registered with the previous instance no longer
    exist there, and certbot does not register again by itself (tnoctl.lab.boot drops them).
    """
    rest = DIRECTORY_URL.removeprefix("https://")
    return f"etc/letsencrypt/accounts/{rest.split('/', 1)[0]}"


def render_config(cert: Path, key: Path) -> str:
    """pebble's JSON configuration (pure). HTTP-01/TLS-ALPN-01 ports point nowhere useful: DNS-01 only."""
    config = {
        "pebble": {
            "listenAddress": f"{GATEWAY}:{ACME_PORT}",
            "managementListenAddress": f"{GATEWAY}:{MANAGEMENT_PORT}",
            "certificate": str(cert),
            "privateKey": str(key),
            "httpPort": 5002,
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    return json.dumps(config, indent=2) + "\n"


def pebble_argv(pebble: str, config: Path) -> list[str]:
    """The pebble command line: our config, the lab DNS as its only resolver (pure)."""
    return [pebble, "-config", str(config), "-dnsserver", f"{GATEWAY}:{DNS_PORT}"]


def pebble_env() -> dict[str, str]:
    """pebble's environment: no validation sleep, no random nonce rejection (tests are deterministic)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env["PEBBLE_VA_NOSLEEP"] = "1"
    env["PEBBLE_WFE_NONCEREJECT"] = "0"
    return env


def start_pebble(run_dir: Path, cert: Path, key: Path) -> procs.ProcRecord:
    """Start pebble (foreground, detached) with the lab-CA-issued listener cert; return its record."""
    pebble = shutil.which("pebble") or "/usr/bin/pebble"
    if not Path(pebble).exists():
        raise OperationFailed("pebble is not installed (apt-get install pebble)")
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "pebble.json"
    config.write_text(render_config(cert, key))
    pid = procs.spawn_detached(pebble_argv(pebble, config), run_dir / "console.log", env=pebble_env())
    record = procs.record_for(pid, marker=str(config), program=Path(pebble).name)
    from tnoctl.lab.aptproxy import wait_port

    for port in (ACME_PORT, MANAGEMENT_PORT):
        if not wait_port(GATEWAY, port, 15, record):
            raise OperationFailed(f"pebble did not listen on {GATEWAY}:{port} (see {run_dir / 'console.log'})")
    return record


def fetch_root(lab_ca: Path, target: Path, timeout: float = 10.0) -> Path:
    """Fetch pebble's current root from its management API (verified against the lab CA); write `target`."""
    ctx = ssl.create_default_context(cafile=str(lab_ca))
    url = f"https://{GATEWAY}:{MANAGEMENT_PORT}/roots/0"
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, context=ctx, timeout=2) as response:
                pem = response.read().decode("ascii")
            break
        except (OSError, ValueError) as exc:
            last = str(exc)
            time.sleep(0.2)
    else:
        raise OperationFailed(f"could not fetch pebble's root from {url}: {last}")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise OperationFailed(f"{url} did not return a PEM certificate")
    tmp = target.with_suffix(".tmp")
    tmp.write_text(pem)
    tmp.chmod(0o644)
    tmp.replace(target)
    return target


def write_trust_bundle(lab_ca: Path, acme_root: Path, target: Path) -> Path:
    """Write `target` = the lab CA then pebble's root (replaced atomically: readers never see half a file)."""
    text = lab_ca.read_text()
    if not text.endswith("\n"):
        text += "\n"
    tmp = target.with_suffix(".tmp")
    tmp.write_text(text + acme_root.read_text())
    tmp.chmod(0o644)
    tmp.replace(target)
    return target
