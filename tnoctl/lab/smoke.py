"""`tnoctl lab smoke`: prove each lab commune's mail and office work, with the product's probes.

Per tenant: the mail round trip of :mod:`tnoctl.probes.roundtrip` (submission on 587 with
STARTTLS + AUTH from one mailbox to itself, read back over IMAPS, deleted) and the office checks
of :mod:`tnoctl.probes.office` (``/hosting/capabilities`` and ``/hosting/discovery`` through the
tenant's proxy). TLS is verified against the lab CA with ``mail.<domain>``/``office.<domain>`` as
server names, exactly as ``tnoctl status`` probes. Used by `make demo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tnoctl.probes.office import probe_office
from tnoctl.probes.roundtrip import probe_roundtrip

SPECIAL = {"canary", "quota-test"}
ROUNDTRIP_TIMEOUT = 30.0
OFFICE_TIMEOUT = 20.0


@dataclass(frozen=True)
class SmokeResult:
    tenant: str
    mail_ok: bool
    mail_detail: str
    office_ok: bool
    office_detail: str

    @property
    def ok(self) -> bool:
        return self.mail_ok and self.office_ok


def smoke_tenant(tenant: Any, inventory: Any, secrets: dict[str, str], ca: Path) -> SmokeResult:
    """Run the mail round trip and the office checks for one tenant (failures become the result)."""
    domain = tenant.domains[0]
    mail_ok, mail_detail, office_ok, office_detail = True, "not enabled", True, "not enabled"
    if "mail" in tenant.services:
        box = next(m for m in tenant.mailboxes if m.local not in SPECIAL)
        address = f"{box.local}@{box.domain or domain}"
        ip = inventory.hosts[tenant.placement.mail].address
        result = probe_roundtrip(tenant.slug, ip, f"mail.{domain}", address, secrets[box.password_vault], ca,
                                 ROUNDTRIP_TIMEOUT)
        mail_ok, mail_detail = result.ok, result.detail
    if "office" in tenant.services:
        ip = inventory.hosts[tenant.placement.office].address
        results = probe_office(tenant.slug, ip, 443, f"office.{domain}", ca, OFFICE_TIMEOUT)
        failed = [r for r in results if not r.ok]
        office_ok = not failed
        if failed:
            office_detail = "; ".join(f"{r.check}: {r.detail}" for r in failed)
        else:
            version = next(r.detail for r in results if r.check == "office_capabilities")
            office_detail = f"{version.removeprefix('productVersion ')} via https://office.{domain}"
    return SmokeResult(tenant.slug, mail_ok, mail_detail, office_ok, office_detail)
