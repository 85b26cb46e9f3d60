"""Lab networking: the bridge tnobr0 (198.18.0.1/24) and one netns + veth pair per host.

Hosts get `eth0` with their address in a namespace named after them and no default route,
so they can reach 198.18.0.0/24 only. All operations are idempotent and tolerate leftovers
from a lab whose processes were killed.
"""

from __future__ import annotations

from pathlib import Path

from tnoctl.lab.cmd import run

BRIDGE = "tnobr0"
GATEWAY = "198.18.0.1"
PREFIX = 24
NETNS_DIR = Path("/run/netns")


def veth_name(host: str) -> str:
    """Root-side veth name for a host: `ve-<host>` cut to the 15-char interface limit."""
    return f"ve-{host}"[:15]


def host_mac(address: str) -> str:
    """A fixed, locally administered MAC for a host's eth0, derived from its address.

    Stable across restarts, so the ARP caches of the machine and of the other hosts stay right
    when a host is restarted (a new random MAC made the first connections after a restart stall).
    """
    octets = [int(x) for x in address.split(".")]
    return "02:54:{:02x}:{:02x}:{:02x}:{:02x}".format(*octets)


def link_exists(name: str) -> bool:
    """True when a network interface of that name exists in the root namespace."""
    return Path("/sys/class/net", name).exists()


def netns_exists(name: str) -> bool:
    """True when /run/netns/<name> exists."""
    return (NETNS_DIR / name).exists()


def ensure_bridge() -> None:
    """Create tnobr0 with 198.18.0.1/24 and bring it up (no-op when already so)."""
    if not link_exists(BRIDGE):
        run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
    if f" {GATEWAY}/{PREFIX} " not in addrs:
        run(["ip", "addr", "add", f"{GATEWAY}/{PREFIX}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])


def remove_bridge() -> None:
    """Delete tnobr0 if present."""
    if link_exists(BRIDGE):
        run(["ip", "link", "del", BRIDGE], check=False)


def remove_host_net(host: str) -> None:
    """Delete the host's netns (which also deletes its veth pair) and a leftover root-side veth."""
    if netns_exists(host):
        run(["ip", "netns", "del", host], check=False)
    veth = veth_name(host)
    if link_exists(veth):
        run(["ip", "link", "del", veth], check=False)


def create_host_net(host: str, address: str) -> None:
    """Fresh netns `host` with eth0 = address/24 bridged to tnobr0; no default route."""
    remove_host_net(host)
    veth = veth_name(host)
    run(["ip", "netns", "add", host])
    run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", host_mac(address),
         "netns", host])
    run(["ip", "link", "set", veth, "master", BRIDGE, "up"])
    run(["ip", "-n", host, "link", "set", "lo", "up"])
    run(["ip", "-n", host, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0"])
    run(["ip", "-n", host, "link", "set", "eth0", "up"])
