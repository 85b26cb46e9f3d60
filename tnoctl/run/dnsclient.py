"""The one DNS adapter: ask one authoritative server for records, send RFC 2136 updates signed with TSIG.

Why here: like SSH and ansible-runner, talking to a DNS server is I/O the actions reach through one
typed object (and tests replace with a fake). Queries go straight to the configured server (not the
machine's resolver), so `dns check` sees what the primary publishes, without caches. The TSIG
secret is held only in the dnspython keyring object and never appears in messages. Zones the platform
does not serve (a tenant's ``dns.zone: external``) are read through :class:`ZoneServersClient`: their
name servers are found with the controller's resolver, then asked directly like the platform's server;
it refuses updates.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.tsig
import dns.tsigkeyring
import dns.update

from tnoctl.errors import OperationFailed

TIMEOUT = 5.0


class DnsClient(Protocol):
    """What actions need of a DNS server (tests pass a fake)."""

    def query(self, name: str, rtype: str) -> list[str]:
        """Values (presentation form; TXT chunks joined) of `name`/`rtype`; [] when none."""
        ...

    def update(self, zone: str, deletes: list[tuple[str, str, str | None]], adds: list[tuple[str, str, str]]) -> None:
        """One RFC 2136 update of `zone`: delete (name, type, value|None=whole RRset), then add (name, type, value)."""
        ...


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key: name, algorithm, base64 secret (repr hides the secret)."""

    name: str
    algorithm: str
    secret: str = field(repr=False)


def split_server(server: str) -> tuple[str, int]:
    """'198.18.0.1' → ('198.18.0.1', 53); '[2001:db8::1]:5353' → ('2001:db8::1', 5353); names resolved (pure-ish)."""
    host, port = server, 53
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif server.count(":") == 1:
        host, _, text = server.partition(":")
        port = int(text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        try:
            host = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
        except OSError as exc:
            raise OperationFailed(f"DNS server {server}: cannot resolve its name ({exc.strerror})") from None
    return host, port


def txt_value(rdata: object) -> str:
    """A TXT rdata's strings joined (how SPF/DKIM/DMARC readers see it)."""
    return b"".join(rdata.strings).decode(errors="replace")  # type: ignore[attr-defined]


class DnspythonClient:
    """DnsClient over dnspython, against one server (UDP, TCP on truncation)."""

    def __init__(self, server: str, key: TsigKey | None = None, timeout: float = TIMEOUT) -> None:
        self.server = server
        self.address, self.port = split_server(server)
        self.key = key
        self.timeout = timeout

    def query(self, name: str, rtype: str) -> list[str]:
        """Ask the server directly; NXDOMAIN/NODATA → []; a server failure is OperationFailed."""
        request = dns.message.make_query(name, rtype)
        request.flags &= ~dns.flags.RD  # an authoritative answer, not a recursive one
        try:
            response, _tcp = dns.query.udp_with_fallback(request, self.address, timeout=self.timeout, port=self.port)
        except (dns.exception.DNSException, OSError) as exc:
            raise OperationFailed(f"DNS server {self.server}: no answer for {name} {rtype} ({exc})") from None
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return []
        if rcode != dns.rcode.NOERROR:
            raise OperationFailed(f"DNS server {self.server}: {name} {rtype}: {dns.rcode.to_text(rcode)}")
        wanted = dns.rdatatype.from_text(rtype)
        values: list[str] = []
        for rrset in response.answer:
            if rrset.rdtype != wanted or rrset.name != dns.name.from_text(name):
                continue
            values += [txt_value(r) if wanted == dns.rdatatype.TXT else r.to_text() for r in rrset]
        return values

    def update(self, zone: str, deletes: list[tuple[str, str, str | None]], adds: list[tuple[str, str, str]]) -> None:
        """Send one TSIG-signed update; refused/failed updates are OperationFailed naming the rcode only."""
        if self.key is None:
            raise OperationFailed("publishing DNS records needs tno_dns_tsig_key_name and tno_dns_tsig_secret_vault")
        keyring = dns.tsigkeyring.from_text({self.key.name: (self.key.algorithm, self.key.secret)})
        message = dns.update.UpdateMessage(zone, keyring=keyring, keyname=dns.name.from_text(self.key.name),
                                           keyalgorithm=self.key.algorithm)
        for name, rtype, value in deletes:
            if value is None:
                message.delete(name, rtype)
            else:
                message.delete(name, rtype, value)
        for name, rtype, value in adds:
            message.add(name, 300, rtype, value)
        try:
            response = dns.query.tcp(message, self.address, timeout=self.timeout, port=self.port)
        except (dns.exception.DNSException, OSError) as exc:
            raise OperationFailed(f"DNS server {self.server}: update of {zone} failed ({type(exc).__name__})") from None
        if response.rcode() != dns.rcode.NOERROR:
            raise OperationFailed(f"DNS server {self.server}: update of {zone} refused: "
                                  f"{dns.rcode.to_text(response.rcode())}")


NameServers = Callable[[str], list[str]]
"""zone → addresses of its authoritative name servers (tests pass a fake)."""


def zone_servers(zone: str) -> list[str]:
    """The addresses of ``zone``'s name servers, found through the controller's resolver (/etc/resolv.conf)."""
    resolver = dns.resolver.Resolver()
    resolver.lifetime = TIMEOUT
    try:
        names = sorted(r.target.to_text() for r in resolver.resolve(zone, "NS"))
        addresses = [a.to_text() for ns in names for a in resolver.resolve(ns, "A", raise_on_no_answer=False)]
    except (dns.exception.DNSException, OSError) as exc:
        raise OperationFailed(f"zone {zone}: cannot find its name servers ({type(exc).__name__})") from None
    if not addresses:
        raise OperationFailed(f"zone {zone}: its name servers have no IPv4 address")
    return addresses


class ZoneServersClient:
    """DnsClient for zones tnoctl does not manage (``dns.zone: external``): queries go to each zone's own
    authoritative servers (what the registrar publishes, without caches); updates are refused.

    A name is asked of the servers of the longest ``zones`` entry it belongs to; the first server that
    answers is kept for that zone.
    """

    def __init__(self, zones: tuple[str, ...], servers: NameServers = zone_servers, timeout: float = TIMEOUT) -> None:
        self.zones = zones
        self.servers = servers
        self.timeout = timeout
        self._clients: dict[str, DnspythonClient] = {}

    def _zone(self, name: str) -> str:
        owner = name.rstrip(".").lower()
        found = [z for z in self.zones if owner == z or owner.endswith("." + z)]
        if not found:
            raise OperationFailed(f"{name}: in none of the zones {', '.join(self.zones)}")
        return max(found, key=len)

    def query(self, name: str, rtype: str) -> list[str]:
        """Ask the zone's name servers in turn; OperationFailed when none answers."""
        zone = self._zone(name)
        if zone in self._clients:
            return self._clients[zone].query(name, rtype)
        last: OperationFailed | None = None
        for address in self.servers(zone):
            client = DnspythonClient(address, timeout=self.timeout)
            try:
                values = client.query(name, rtype)
            except OperationFailed as exc:
                last = exc
                continue
            self._clients[zone] = client
            return values
        raise last or OperationFailed(f"zone {zone}: no name server")

    def update(self, zone: str, deletes: list[tuple[str, str, str | None]], adds: list[tuple[str, str, str]]) -> None:
        """Never: the zone is the commune's (it publishes its records at its own DNS host)."""
        raise OperationFailed(f"zone {zone} is external: tnoctl does not update it")
