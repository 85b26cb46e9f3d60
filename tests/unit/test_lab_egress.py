"""tnoctl.lab.egress: the pcap reader and the three egress rules, on frames built here byte by byte."""

from __future__ import annotations

import ipaddress
import shutil
import struct
import subprocess

import pytest

from tnoctl.lab import egress

MAIL1, OFFICE1, GATEWAY = "198.18.0.11", "198.18.0.13", "198.18.0.1"


def _ipv4(src: str, dst: str, proto: int, segment: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0, 64, proto, 0,
                         ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return b"\x02" * 12 + b"\x08\x00" + header + segment


def _ipv6(src: str, dst: str, proto: int, segment: bytes) -> bytes:
    header = struct.pack("!IHBB16s16s", 6 << 28, len(segment), proto, 255,
                         ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed)
    return b"\x02" * 12 + b"\x86\xdd" + header + segment


def _udp(sport: int, dport: int, payload: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def _tcp(sport: int, dport: int, payload: bytes = b"", flags: int = 0x18) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 5 << 4, flags, 512, 0, 0) + payload


def _dns_query(name: str, response: bool = False) -> bytes:
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"
    return struct.pack("!HHHHHH", 0x1234, 0x8180 if response else 0x0100, 1, 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def _pcap(*frames: bytes, magic: bytes = b"\xd4\xc3\xb2\xa1") -> bytes:
    order = "<" if magic[0] in (0xD4, 0x4D) else ">"
    out = magic + struct.pack(order + "HHiIII", 2, 4, 0, 0, 65535, 1)
    for frame in frames:
        out += struct.pack(order + "IIII", 0, 0, len(frame), len(frame)) + frame
    return out


def _check(*frames: bytes) -> egress.EgressReport:
    return egress.check(egress.read_pcap(_pcap(*frames)))


def test_lab_only_traffic_has_no_violation_and_is_counted() -> None:
    report = _check(
        _ipv4(MAIL1, GATEWAY, 17, _udp(40000, 53, _dns_query("_dmarc.bron.test"))),
        _ipv4(MAIL1, GATEWAY, 17, _udp(40001, 53, _dns_query("11.0.18.198.in-addr.arpa"))),
        _ipv4(OFFICE1, MAIL1, 6, _tcp(50000, 25, flags=0x02)),
        _ipv4(MAIL1, GATEWAY, 6, _tcp(50001, 3142, b"GET http://deb.debian.org/debian/dists/bookworm/InRelease"
                                               b" HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n")),
        _ipv6("fe80::54:1", "ff02::2", 58, b"\x85\x00"),
    )
    assert report.violations == {}, report.summary()
    assert (report.packets, report.connections) == (5, 1)
    assert report.dns_questions == {"_dmarc.bron.test": 1, "11.0.18.198.in-addr.arpa": 1}
    assert report.proxied_hosts == {"deb.debian.org": 1}


def test_dns_question_for_a_public_name_is_a_violation_naming_it() -> None:
    report = _check(_ipv4(MAIL1, GATEWAY, 17, _udp(40000, 53, _dns_query("maps.rspamd.com"))),
                    _ipv4(GATEWAY, MAIL1, 17, _udp(53, 40000, _dns_query("maps.rspamd.com", response=True))))
    assert list(report.violations) == [f"DNS question for 'maps.rspamd.com' from {MAIL1} (not a lab name)"]


def test_dns_over_tcp_is_read_after_its_length_prefix() -> None:
    query = _dns_query("zen.spamhaus.org")
    report = _check(_ipv4(MAIL1, GATEWAY, 6, _tcp(40000, 53, struct.pack("!H", len(query)) + query)))
    assert "zen.spamhaus.org" in report.dns_questions and len(report.violations) == 1


@pytest.mark.parametrize("frame", [
    _ipv4(MAIL1, "1.1.1.1", 6, _tcp(40000, 443, flags=0x02)),
    _ipv4("192.168.1.5", MAIL1, 17, _udp(123, 123, b"")),
    _ipv6("2001:db8::1", "2001:db8::2", 6, _tcp(1, 2)),
], ids=["tcp-to-public", "udp-from-private", "ipv6-global"])
def test_a_packet_outside_the_lab_network_is_a_violation(frame: bytes) -> None:
    report = _check(frame)
    assert len(report.violations) == 1 and "outside the lab network" in next(iter(report.violations))


@pytest.mark.parametrize("request_line", [
    b"GET http://evil.example.com/payload HTTP/1.1",
    b"CONNECT deb.debian.org:443 HTTP/1.1",
    b"GET /relative/on/the/proxy HTTP/1.1",
])
def test_an_apt_proxy_request_for_anything_but_the_mirror_is_a_violation(request_line: bytes) -> None:
    payload = b"GET http://deb.debian.org/debian/pool/x.deb HTTP/1.1\r\nHost: x\r\n\r\n" + request_line + b"\r\n\r\n"
    report = _check(_ipv4(MAIL1, GATEWAY, 6, _tcp(40000, 3142, payload)))
    assert report.proxied_hosts == {"deb.debian.org": 1}  # the pipelined first request is read too
    assert len(report.violations) == 1 and "not Debian's mirror" in next(iter(report.violations))


def test_big_endian_files_and_a_truncated_last_record_are_read() -> None:
    frame = _ipv4(MAIL1, GATEWAY, 17, _udp(1, 53, _dns_query("mail.bron.test")))
    data = _pcap(frame, frame, magic=b"\xa1\xb2\xc3\xd4")
    assert sum(1 for _ in egress.read_pcap(data[:-5])) == 1


def test_a_file_that_is_not_an_ethernet_pcap_is_refused() -> None:
    with pytest.raises(ValueError, match="bad magic"):
        list(egress.read_pcap(b"\x00" * 40))
    not_ethernet = b"\xd4\xc3\xb2\xa1" + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 113)
    with pytest.raises(ValueError, match="link type 113"):
        list(egress.read_pcap(not_ethernet))


def test_lab_names_are_the_reserved_top_level_names_only() -> None:
    assert egress.lab_name("mta-sts.saint-fons.test.") and egress.lab_name("outside.example")
    assert not egress.lab_name("example.com") and not egress.lab_name("nottest") and not egress.lab_name("debian.org")


@pytest.mark.root
def test_tcpdump_compiles_the_capture_filter() -> None:
    """The filter string is what tcpdump runs: a syntax error would only show when the lab starts."""
    if shutil.which("tcpdump") is None:
        pytest.fail("tcpdump is missing: it is in apt-packages.txt, run `make install`")
    proc = subprocess.run(["tcpdump", "-d", "-i", "lo", egress.CAPTURE_FILTER], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
