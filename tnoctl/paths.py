"""Well-known locations: the project checkout, the embedded lab inventory, lab runtime and cache dirs."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout tnoctl runs from (roles/, playbooks/, inventories/ live here)."""

ROLES_DIR = PROJECT_ROOT / "roles"
PLAYBOOKS_DIR = PROJECT_ROOT / "playbooks"
LAB_INVENTORY = PROJECT_ROOT / "inventories" / "lab"


def lab_dir() -> Path:
    """Runtime state of the lab (keys, known_hosts, ssh_config, CA, run dirs). Root-owned."""
    return Path(os.environ.get("TNO_LAB_DIR", "/var/lib/tnoctl/lab"))


def lab_ca_bundle() -> Path:
    """What a lab client trusts: ``ca/trust.pem`` (lab CA + pebble's current root) when the lab wrote it,
    else the lab CA alone (``ca/ca.crt``: a lab whose ACME CA is not up)."""
    bundle = lab_dir() / "ca" / "trust.pem"
    return bundle if bundle.exists() else lab_dir() / "ca" / "ca.crt"


def lab_cache_dir() -> Path:
    """Cache that survives across lab lifetimes and CI runs (base rootfs tarball, debs)."""
    return Path(os.environ.get("TNO_LAB_CACHE", "/var/cache/tnoctl/lab"))


def default_inventory() -> Path:
    """`$TNO_INVENTORY`, else the embedded lab inventory."""
    env = os.environ.get("TNO_INVENTORY")
    return Path(env) if env else LAB_INVENTORY


def state_dir(inventory: Path) -> Path:
    """`$TNO_STATE_DIR`, else `<inventory>/.tno` (git-ignored)."""
    env = os.environ.get("TNO_STATE_DIR")
    return Path(env) if env else inventory / ".tno"
