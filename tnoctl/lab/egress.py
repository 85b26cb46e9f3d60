"""Egress capture of the lab bridge: prove that nothing the suite does leaves the lab.

The syndicate promises communes a sovereign suite: no host phones home (no Rspamd map, update,
fuzzy or RBL lookup, no ACME or DNS query outside, no package fetched from anywhere but Debian's
mirror). Lab hosts have no default route, so an attempt to reach the internet shows up on the bridge
in one of three ways, all captured here with tcpdump on ``tnobr0``:

- a packet whose source or destination is outside 198.18.0.0/24 (IPv6: outside link-local);
- a DNS question to the lab's DNS server for a name that is not the lab's own (the lab uses only the
  reserved top-level names ``.test``, ``.example``, ``.invalid``, ``.localhost`` and the lab
  network's reverse zone): a resolver with recursion would have sent it to the internet;
- a request to the apt proxy for anything but Debian's mirror (or a ``CONNECT`` tunnel).

The capture filter keeps those packets plus every TCP SYN (each connection's destination) and drops
the bulk of the lab's own traffic (SSH sessions, downloads, backups), so a 45-minute test session
captures megabytes, not gigabytes. Parsing is standard library only (classic pcap, Ethernet).
"""

from __future__ import annotations

import ipaddress
import re
import signal
import struct
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tnoctl.lab import base, net

LAB_NETWORK = ipaddress.ip_network(f"{net.GATEWAY}/{net.PREFIX}", strict=False)
APT_PROXY_PORT = 3142
LAB_DNS_SUFFIXES = ("test", "example", "invalid", "localhost", "18.198.in-addr.arpa")
"""Names the lab may ask its DNS server about: the RFC 2606/6761 reserved top-level names every lab
zone lives under, and the reverse zone of 198.18.0.0/24 (``x.0.18.198.in-addr.arpa``)."""
MIRROR_HOSTS = frozenset(urlsplit(url).hostname for url in (base.MIRROR, base.SECURITY_MIRROR))
"""The only hosts lab hosts may ask the apt proxy for (Debian's mirror)."""

CAPTURE_FILTER = (
    f"(ip or ip6) and (not (src net {LAB_NETWORK} and dst net {LAB_NETWORK})"
    " or port 53"
    f" or (tcp dst port {APT_PROXY_PORT} and greater 100)"
    " or (tcp[tcpflags] & tcp-syn != 0))"
)
"""tcpdump filter: leaving packets, DNS, requests to the apt proxy (not its bare ACKs), connection starts."""

_IPV4_OK = (LAB_NETWORK, ipaddress.ip_network("224.0.0.0/24"), ipaddress.ip_network("255.255.255.255/32"),
             ipaddress.ip_network("0.0.0.0/32"))
"""The lab network, link-local multicast, the limited broadcast and the unspecified source address."""
_IPV6_LINK = (ipaddress.ip_network("fe80::/10"), ipaddress.ip_network("ff02::/16"), ipaddress.ip_network("::/128"))
_REQUEST_LINE = re.compile(rb"(?m)^(GET|HEAD|POST|PUT|DELETE|OPTIONS|CONNECT) (\S+) HTTP/1\.[01]\r?$")
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
_LINKTYPE_ETHERNET = 1


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Packet:
    """One captured IP packet, reduced to what the egress rules look at."""

    src: Address
    dst: Address
    proto: str  # "tcp", "udp" or "ip-<number>"
    sport: int = 0
    dport: int = 0
    syn: bool = False
    payload: bytes = b""


@dataclass
class EgressReport:
    """What a capture shows: counts for the non-vacuity checks, and every violation found."""

    packets: int = 0
    connections: int = 0
    dns_questions: Counter = field(default_factory=Counter)
    proxied_hosts: Counter = field(default_factory=Counter)
    violations: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        """One paragraph for a test failure or a log: counts, then the violations (most frequent first)."""
        lines = [f"{self.packets} packets, {self.connections} connections, "
                 f"{sum(self.dns_questions.values())} DNS questions ({len(self.dns_questions)} names), "
                 f"{sum(self.proxied_hosts.values())} apt proxy requests to {sorted(self.proxied_hosts)}"]
        lines += [f"  {count}x {what}" for what, count in self.violations.most_common(30)]
        if len(self.violations) > 30:
            lines.append(f"  ... and {len(self.violations) - 30} more kinds")
        return "\n".join(lines)


# ------------------------------------------------------------------ capture (root, tcpdump)
class Capture:
    """tcpdump writing the egress-relevant packets of the lab bridge to ``path`` until stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Create the bridge if needed (`lab up` keeps it), then start tcpdump on it, unbuffered (-U).

        Started before `lab up` so the capture covers the hosts' first boot; ``-Z root`` keeps tcpdump
        from dropping to an account that may not write ``path``.
        """
        net.ensure_bridge()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            ["tcpdump", "-i", net.BRIDGE, "-n", "-s", "0", "-U", "-Z", "root", "-w", str(self.path), CAPTURE_FILTER],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    def running(self) -> bool:
        """True while tcpdump runs (it exits by itself when `lab down` removes the bridge)."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> Path:
        """Stop tcpdump (SIGINT: it flushes and closes the file) and return the capture's path."""
        if self._proc is None:
            raise RuntimeError("egress capture was never started")
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self.path


# ------------------------------------------------------------------ reading (pure)
def read_pcap(data: bytes) -> Iterator[Packet]:
    """The IP packets of a classic pcap file of Ethernet frames; a truncated last record is ignored."""
    if len(data) < 24 or data[:4] not in _PCAP_MAGIC:
        raise ValueError("not a pcap file (bad magic)")
    order = _PCAP_MAGIC[data[:4]]
    (linktype,) = struct.unpack_from(order + "I", data, 20)
    if linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"pcap link type {linktype} is not Ethernet")
    offset = 24
    while offset + 16 <= len(data):
        incl_len = struct.unpack_from(order + "I", data, offset + 8)[0]
        frame = data[offset + 16: offset + 16 + incl_len]
        offset += 16 + incl_len
        if len(frame) < incl_len:
            break  # tcpdump stopped mid-record
        packet = _parse_ethernet(frame)
        if packet is not None:
            yield packet


def _parse_ethernet(frame: bytes) -> Packet | None:
    if len(frame) < 14:
        return None
    ethertype, offset = struct.unpack_from("!H", frame, 12)[0], 14
    while ethertype in (0x8100, 0x88A8) and len(frame) >= offset + 4:  # VLAN tags
        ethertype, offset = struct.unpack_from("!H", frame, offset + 2)[0], offset + 4
    if ethertype == 0x0800 and len(frame) >= offset + 20:
        ihl = (frame[offset] & 0x0F) * 4
        proto = frame[offset + 9]
        src = ipaddress.IPv4Address(frame[offset + 12: offset + 16])
        dst = ipaddress.IPv4Address(frame[offset + 16: offset + 20])
        return _transport(src, dst, proto, frame[offset + ihl:])
    if ethertype == 0x86DD and len(frame) >= offset + 40:
        proto = frame[offset + 6]
        src = ipaddress.IPv6Address(frame[offset + 8: offset + 24])
        dst = ipaddress.IPv6Address(frame[offset + 24: offset + 40])
        return _transport(src, dst, proto, frame[offset + 40:])
    return None


def _transport(src: Address, dst: Address, proto: int, segment: bytes) -> Packet:
    if proto == 6 and len(segment) >= 20:
        sport, dport = struct.unpack_from("!HH", segment, 0)
        header = (segment[12] >> 4) * 4
        syn = bool(segment[13] & 0x02) and not segment[13] & 0x10  # SYN without ACK: a connection start
        return Packet(src, dst, "tcp", sport, dport, syn, segment[header:])
    if proto == 17 and len(segment) >= 8:
        sport, dport = struct.unpack_from("!HH", segment, 0)
        return Packet(src, dst, "udp", sport, dport, False, segment[8:])
    return Packet(src, dst, f"ip-{proto}")


def dns_question_names(message: bytes) -> list[str]:
    """The question names of a DNS *query* (empty for a response or a message cut short), lower case."""
    if len(message) < 12 or message[2] & 0x80:
        return []
    (count,) = struct.unpack_from("!H", message, 4)
    names, offset = [], 12
    for _ in range(min(count, 16)):
        labels: list[str] = []
        while offset < len(message):
            length = message[offset]
            if length == 0 or length & 0xC0:  # end of name (compression never starts a question name)
                offset += 1 if length == 0 else 2
                break
            labels.append(message[offset + 1: offset + 1 + length].decode("ascii", "backslashreplace"))
            offset += 1 + length
        else:
            return names
        names.append(".".join(labels).lower())
        offset += 4  # QTYPE, QCLASS
    return names


# ------------------------------------------------------------------ the rules (pure)
def _address_ok(address: Address) -> bool:
    if address.version == 4:
        return any(address in network for network in _IPV4_OK)
    return any(address in network for network in _IPV6_LINK)


def lab_name(name: str) -> bool:
    """True for a name the lab owns (see LAB_DNS_SUFFIXES)."""
    name = name.rstrip(".")
    return any(name == suffix or name.endswith("." + suffix) for suffix in LAB_DNS_SUFFIXES)


def check(packets: Iterable[Packet]) -> EgressReport:
    """Apply the three egress rules of the module docstring to ``packets``."""
    report = EgressReport()
    for packet in packets:
        report.packets += 1
        report.connections += packet.syn
        for end in (packet.src, packet.dst):
            if not _address_ok(end):
                report.violations[f"{packet.proto} {packet.src}:{packet.sport} -> {packet.dst}:{packet.dport}"
                                  " (outside the lab network)"] += 1
                break
        if packet.dport == 53 and packet.payload:
            message = packet.payload[2:] if packet.proto == "tcp" else packet.payload
            for name in dns_question_names(message):
                report.dns_questions[name] += 1
                if not lab_name(name):
                    report.violations[f"DNS question for {name!r} from {packet.src} (not a lab name)"] += 1
        if packet.proto == "tcp" and packet.dport == APT_PROXY_PORT:
            for method, target in _REQUEST_LINE.findall(packet.payload):
                host = urlsplit(target.decode("ascii", "backslashreplace")).hostname
                if method == b"CONNECT" or host not in MIRROR_HOSTS:
                    report.violations[f"apt proxy {method.decode()} {target.decode('ascii', 'backslashreplace')[:120]}"
                                      f" from {packet.src} (not Debian's mirror)"] += 1
                else:
                    report.proxied_hosts[host] += 1
    return report


def check_file(path: Path) -> EgressReport:
    """`check` over a capture file."""
    return check(read_pcap(path.read_bytes()))
