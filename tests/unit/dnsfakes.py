"""Fakes for the DNS record tests: the mail host's answer to the DKIM key read (``grep -r -H -Z``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from tnoctl.actions.tenant_dns import KEY_DIR

GENKEY_TXT = '( "v=DKIM1; h=sha256; k=rsa; " "p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxyz123" )'
"""A DKIM public key record as the mail role writes it (opendkim-genkey's format)."""
DKIM_VALUE = "v=DKIM1; h=sha256; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxyz123"


def grep_output(files: dict[str, str]) -> str:
    """What ``grep -r -H -Z -e ''`` prints for these files (path → content): ``path\\0line`` per line."""
    return "".join(f"{path}\0{line}\n" for path, text in files.items() for line in text.splitlines())


def dkim_reply(genkey: str = GENKEY_TXT, selectors: Sequence[str] = ("tno2026",),
               without: Sequence[str] = ()) -> Callable[[str, tuple[str, ...]], tuple[int, str]]:
    """A FakeSsh reply: every domain directory named in the grep argv holds ``selectors`` (except ``without``)."""

    def reply(host: str, argv: tuple[str, ...]) -> tuple[int, str]:
        dirs = [a for a in argv if a.startswith(KEY_DIR + "/")]
        files = {f"{d}/{s}.txt": genkey for d in dirs if d.rsplit("/", 1)[1] not in without for s in selectors}
        return (2 if without else 0), grep_output(files)

    return reply


class FakeDns:
    """A zone in memory: queries answer from it, updates apply to it (presentation-form TXT unquoted).

    ``frozen``: a server that accepts updates and applies none. Build a client factory for an action with
    ``lambda env, with_key: fake``.
    """

    def __init__(self, records: dict[tuple[str, str], list[str]] | None = None, frozen: bool = False) -> None:
        self.records = {k: list(v) for k, v in (records or {}).items()}
        self.frozen = frozen
        self.queries: list[tuple[str, str]] = []
        self.updates: list[tuple[str, list, list]] = []

    def query(self, name: str, rtype: str) -> list[str]:
        self.queries.append((name, rtype))
        return list(self.records.get((name, rtype), []))

    def update(self, zone: str, deletes: list, adds: list) -> None:
        self.updates.append((zone, deletes, adds))
        if self.frozen:
            return
        for name, rtype, value in deletes:
            values = self.records.get((name, rtype), [])
            self.records[(name, rtype)] = [] if value is None else [v for v in values if _plain(value) != v]
        for name, rtype, value in adds:
            self.records.setdefault((name, rtype), []).append(_plain(value) if rtype == "TXT" else value)


def _plain(presentation: str) -> str:
    """A TXT value from its presentation form (quoted chunks joined); other values (A, MX ...) unchanged."""
    return "".join(re.findall(r'"([^"]*)"', presentation)) if presentation.startswith('"') else presentation


def serving(env, slugs: Sequence[str]) -> FakeDns:
    """A DNS server that serves exactly the records the tenants ``slugs`` must have (the one record builder)."""
    from tnoctl.actions.tenant_dns import tenant_records

    zone: dict[tuple[str, str], list[str]] = {}
    for found in tenant_records(env, list(slugs)):
        for row in found.records:
            zone.setdefault((row["name"], row["type"]), []).append(row["value"])
    return FakeDns(zone)
