"""Restore check of an office archive's configuration (``backup drill``, office component). Pure.

An office archive holds the office host's ``coolwsd.xml``, its WOPI proof key and the proxy's
vhost file (role tno_backup, ``tno_backup_office_paths``). The drill restores ``coolwsd.xml``
from the repository (decrypt, decompress, reassemble) and checks that what came back is a
usable coolwsd configuration: well-formed XML whose root is ``<config>`` with settings in it.
"""

from __future__ import annotations

from xml.etree import ElementTree

REQUIRED = "etc/coolwsd/coolwsd.xml"  # archive-relative path the drill restores
ROOT_TAG = "config"


def check_config(text: str) -> tuple[bool, str]:
    """(ok, detail) for a restored coolwsd.xml: parses, root ``<config>``, at least one setting."""
    if not text.strip():
        return False, "restored coolwsd.xml is empty"
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        return False, f"restored coolwsd.xml is not well-formed XML: {exc}"
    if root.tag != ROOT_TAG:
        return False, f"restored coolwsd.xml has root <{root.tag}>, expected <{ROOT_TAG}>"
    settings = sum(1 for _ in root.iter()) - 1
    if settings == 0:
        return False, "restored coolwsd.xml has no settings"
    return True, f"coolwsd.xml restored ({len(text.encode())} bytes, {settings} settings)"
