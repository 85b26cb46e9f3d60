"""The tenant's OWN office configuration, cut out of the host-wide files (``tno-backup stage <slug>.office``).

Why: ``coolwsd.xml`` is per office host and holds every tenant's WOPI alias group and the admin
console password; ``/etc/coolwsd/proof_key`` is the host's private key; the proxy's
``tno-office.conf`` holds every tenant's vhosts. A tenant's repository (readable with that
tenant's passphrase, which sits on the tenant's hosts, and kept after the tenant leaves) must hold
no host-wide secret and nothing of another commune. So the office side stages two files and
archives only them:

* ``coolwsd.xml``: a ``<config>`` document with the tenant's alias group alone (the ``<group>``
  after the role's ``<!-- tenant <slug> -->`` marker), nothing else of the host file;
* ``tno-office.conf``: the tenant's ``server`` blocks (from its ``# tenant <slug>: ...`` marker to
  the next tenant's marker), i.e. its vhosts as deployed.

Standard library only (installed next to the agent). Pure functions plus :func:`stage`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from xml.etree import ElementTree

COOLWSD_NAME = "coolwsd.xml"
PROXY_NAME = "tno-office.conf"


def _tenant_group(root: ElementTree.Element, slug: str) -> ElementTree.Element | None:
    """The ``<group>`` that follows ``<!-- tenant SLUG -->`` inside ``alias_groups``, or None."""
    for groups in root.iter("alias_groups"):
        marked = False
        for child in list(groups):
            if child.tag is ElementTree.Comment:
                marked = (child.text or "").strip() == f"tenant {slug}"
            elif child.tag == "group" and marked:
                return child
            else:
                marked = False
    return None


def tenant_coolwsd(text: str, slug: str) -> str:
    """A coolwsd ``<config>`` with only the tenant's WOPI alias group (no password, no other tenant)."""
    parser = ElementTree.XMLParser(target=ElementTree.TreeBuilder(insert_comments=True))
    root = ElementTree.fromstring(text, parser=parser)
    config = ElementTree.Element("config")
    wopi = ElementTree.SubElement(ElementTree.SubElement(config, "storage"), "wopi", {"allow": "true"})
    groups = ElementTree.SubElement(wopi, "alias_groups", {"mode": "groups"})
    group = _tenant_group(root, slug)
    if group is not None:
        groups.append(ElementTree.Comment(f" tenant {slug} "))
        groups.append(group)
    ElementTree.indent(config, space="    ")
    return ('<?xml version="1.0"?>\n<!-- office configuration of tenant ' + slug
            + ' only (tno-backup stage): its WOPI alias group -->\n'
            + ElementTree.tostring(config, encoding="unicode") + "\n")


_MARKER = re.compile(r"^# tenant ([a-z0-9-]+): ", re.MULTILINE)


def tenant_vhosts(text: str, slug: str) -> str:
    """The proxy file's blocks of ``slug``: each ``# tenant SLUG:`` marker and the one server block after it.

    A block ends at the brace closing its ``server {``, not at the next marker: whatever the file holds
    after the last tenant (the management listener, say) never lands in a commune's archive.
    """
    parts = []
    for mark in _MARKER.finditer(text):
        if mark.group(1) == slug:
            end = _block_end(text, mark.end())
            parts.append(text[mark.start():end].rstrip() + "\n")
    return "".join(parts)


def _block_end(text: str, start: int) -> int:
    """Index just after the brace closing the first ``{`` at or after ``start`` (comments skipped)."""
    depth = 0
    i = start
    while i < len(text):
        char = text[i]
        if char == "#":
            newline = text.find("\n", i)
            i = len(text) if newline < 0 else newline
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def stage(slug: str, staging: Path, coolwsd_xml: Path, proxy_conf: Path) -> list[str]:
    """Write the tenant's own office files into ``staging`` (0700); the names written.

    A source that does not exist on this host (an office host without the proxy) is skipped and its
    staged copy removed, so the archive never carries a stale one.
    """
    staging.mkdir(parents=True, exist_ok=True)
    os.chmod(staging, 0o700)
    written = []
    for name, source, cut in ((COOLWSD_NAME, coolwsd_xml, tenant_coolwsd), (PROXY_NAME, proxy_conf, tenant_vhosts)):
        try:
            text = source.read_text()
        except FileNotFoundError:
            (staging / name).unlink(missing_ok=True)
            continue
        _write(staging / name, cut(text, slug))
        written.append(name)
    return written
