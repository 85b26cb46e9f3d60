"""Incremental exposition: each tenant's lines rendered once and kept until its records change.

Why (issue 18): at 35,000 communes a full exposition is hundreds of MB of text; re-rendering and
re-compressing all of it because one backup was recorded or one probe result arrived made scrapes
take seconds. A :class:`TenantTable` keeps, per tenant, its rendered lines of each family of one
source (:mod:`tnoctl.exporter.tenantrows`); :meth:`TenantTable.update` re-renders only the tenants it
is given. Tenants are spread over :data:`BLOCKS` fixed blocks (by a hash of the slug, so adding or
removing a tenant moves no other one); each (family, block) keeps its gzip member, so a gzip scrape
recompresses only the blocks whose tenants changed and concatenates the rest. A gzip stream may hold
several members (RFC 1952 2.2); Prometheus (Go's gzip reader), urllib3 and Python's gzip read them.

Each tenant's lines are kept zlib-compressed (:func:`pack`): at 35,000 communes the plain text is
~230 MiB, compressed ~10x less (issue 18: exporter <= 1 GB). A block's gzip members are rebuilt by
unpacking each of its tenants once.

``rendered`` counts tenant renders: unit tests prove that one record re-renders one tenant.
"""

from __future__ import annotations

import bisect
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping

from tnoctl.exporter.tenantrows import Records, Row, TenantSource

BLOCKS = 256
Known = Mapping[str, tuple[str, ...]] | None
_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}


def fmt_value(value: float) -> str:
    """A sample value in the text format (``repr`` is exact and fast; Go spellings for inf/nan)."""
    text = repr(float(value))
    return _SPECIAL.get(text, text)


def esc(value: str) -> str:
    """A label value escaped for the text format."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return value


def header(name: str, doc: str) -> str:
    """The HELP and TYPE lines of a gauge family."""
    doc = doc.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {doc}\n# TYPE {name} gauge\n"


def render_rows(name: str, labels: list[str], rows: list[Row], memo: dict[tuple, str] | None = None) -> str:
    """Sample lines of one family (no header); ``memo`` shares label sets between families."""
    if not labels:
        return "".join(f"{name} {fmt_value(v)}\n" for _, v in rows)
    memo = {} if memo is None else memo
    names = tuple(labels)
    parts = []
    for values, v in rows:
        key = (names, values)
        inner = memo.get(key)
        if inner is None:
            inner = memo[key] = ",".join([f'{k}="{esc(x)}"' for k, x in zip(names, values, strict=True)])
        parts.append(f"{name}{{{inner}}} {fmt_value(v)}\n")
    return "".join(parts)


def gzip_member(text: str) -> bytes:
    """One complete gzip member (level 1, mtime 0) of ``text``."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    return comp.compress(text.encode()) + comp.flush()


def pack(chunk: tuple[str, ...]) -> bytes:
    """A tenant's lines of each family, compressed (level 1: rendering stays cheap) after a table of their
    lengths (no separator: a label value from a hostile peer may hold any character)."""
    parts = [lines.encode() for lines in chunk]
    return zlib.compress(struct.pack(f"<{len(parts)}I", *map(len, parts)) + b"".join(parts), 1)


def unpack(blob: bytes, count: int) -> list[str]:
    """The lines of each of the ``count`` families that :func:`pack` compressed."""
    data = zlib.decompress(blob)
    out, at = [], 4 * count
    for size in struct.unpack_from(f"<{count}I", data):
        out.append(data[at:at + size].decode())
        at += size
    return out


def block_of(tenant: str) -> int:
    """The tenant's block: stable across processes and independent of the other tenants."""
    return zlib.crc32(tenant.encode()) % BLOCKS


class TenantTable:
    """One source's families, rendered per tenant; only changed tenants are re-rendered."""

    def __init__(self, source: TenantSource) -> None:
        self.source = source
        self.heads = [header(name, doc) for name, doc, _ in source.specs]
        self._head_gz = [gzip_member(h) for h in self.heads]
        self._chunks: dict[str, bytes] = {}  # tenant → its lines of each family, packed (see pack)
        self._blocks: list[list[str]] = [[] for _ in range(BLOCKS)]  # sorted tenants per block
        self._gz: dict[tuple[int, int], bytes] = {}  # (family index, block) → gzip member of its lines
        self.unknown: dict[str, int] = {}  # tenant absent from the inventory → records ignored
        self.known_ref: object = None  # the inventory view the table was built with (identity)
        self.rendered = 0

    def rebuild(self, tenants: Iterable[str], records_of: Callable[[str], Records], known: Known) -> None:
        """Forget everything and render ``tenants`` (start-up, or the inventory changed)."""
        self._chunks, self._gz, self.unknown = {}, {}, {}
        self._blocks = [[] for _ in range(BLOCKS)]
        self.known_ref = known
        self.update(sorted(tenants), records_of, known)

    def update(self, tenants: Iterable[str], records_of: Callable[[str], Records], known: Known) -> None:
        """Re-render the given tenants from their current records; the other tenants are untouched."""
        specs = self.source.specs
        for tenant in tenants:
            records = records_of(tenant)
            chunk: tuple[str, ...] | None = None
            if known is not None and tenant not in known:
                count = self.source.unknown(records)
                if count:
                    self.unknown[tenant] = count
                else:
                    self.unknown.pop(tenant, None)
            else:
                self.unknown.pop(tenant, None)
                rows = self.source.rows(tenant, records, None if known is None else known[tenant])
                memo: dict[tuple, str] = {}
                chunk = tuple(render_rows(name, labels, fam_rows, memo)
                              for (name, _, labels), fam_rows in zip(specs, rows, strict=True))
                if not any(chunk):
                    chunk = None
            self.rendered += 1
            self._store(tenant, chunk)

    def _store(self, tenant: str, chunk: tuple[str, ...] | None) -> None:
        block = block_of(tenant)
        members = self._blocks[block]
        had = tenant in self._chunks
        if chunk is None:
            if not had:
                return
            del self._chunks[tenant]
            members.pop(bisect.bisect_left(members, tenant))
        else:
            packed = pack(chunk)  # deterministic: the same lines give the same bytes
            if not had:
                bisect.insort(members, tenant)
            elif self._chunks[tenant] == packed:
                return  # same lines (a probe round that changed nothing): keep the compressed blocks
            self._chunks[tenant] = packed
        for index in range(len(self.heads)):
            self._gz.pop((index, block), None)

    def tenants(self) -> Iterator[str]:
        """Every rendered tenant, block by block."""
        for members in self._blocks:
            yield from members

    def _block_texts(self, block: int) -> list[str]:
        """The text of each family in one block (each tenant unpacked once)."""
        families: list[list[str]] = [[] for _ in self.heads]
        for tenant in self._blocks[block]:
            for index, lines in enumerate(unpack(self._chunks[tenant], len(self.heads))):
                families[index].append(lines)
        return ["".join(lines) for lines in families]

    def text(self) -> str:
        """The exposition of every family of this source (block by block, so one block is unpacked at a time)."""
        families: list[list[str]] = [[head] for head in self.heads]
        for block, members in enumerate(self._blocks):
            if members:
                for index, text in enumerate(self._block_texts(block)):
                    families[index].append(text)
        return "".join("".join(parts) for parts in families)

    def gzip_parts(self) -> list[bytes]:
        """The same exposition as gzip members: cached per (family, block), rebuilt only where changed."""
        for block, members in enumerate(self._blocks):
            if members and any((index, block) not in self._gz for index in range(len(self.heads))):
                for index, text in enumerate(self._block_texts(block)):
                    self._gz[(index, block)] = gzip_member(text) if text else b""
        out: list[bytes] = []
        for index, head in enumerate(self._head_gz):
            out.append(head)
            for block, members in enumerate(self._blocks):
                if members and (member := self._gz[(index, block)]):
                    out.append(member)
        return out

    def unknown_count(self) -> int:
        """Latest records ignored because their tenant is not in the inventory."""
        return sum(self.unknown.values())

