"""Restore check of an office archive's configuration (``backup drill``, office component). Pure.

An office archive holds the tenant's own office configuration, staged by its office host
(``tno-backup stage <slug>.office``, tnoctl/hostagent/office_stage.py): a ``coolwsd.xml`` with its
WOPI alias group alone and its proxy vhosts, never the host-wide files (admin password, proof key,
other communes). The drill restores ``coolwsd.xml``
from the repository (decrypt, decompress, reassemble) and checks that what came back is a
usable coolwsd configuration: well-formed XML whose root is ``<config>`` with settings in it.
"""

from __future__ import annotations

from xml.etree import ElementTree

from tnoctl.backup import naming

ROOT_TAG = "config"


def required_path(slug: str) -> str:
    """Archive-relative path of the staged coolwsd.xml the drill restores."""
    return f"{naming.STAGING_ROOT.strip('/')}/{naming.unit_key(slug, 'office')}/coolwsd.xml"


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
