"""Filters `tno_mta_sts_policy`, `tno_autoconfig_xml`, `tno_mail_fqdn`: the mail documents from tnoctl itself.

`domain | tno_mta_sts_policy(mode)` is exactly the policy whose id `tnoctl dns plan|publish` puts in the
domain's ``_mta-sts`` TXT record (tnoctl.config.maildocs, one function for both), so the served policy
and the published id cannot drift apart. `domain | tno_mail_fqdn` is the MX name (the policy's ``mx:``
and the autoconfig document's server). Like the tno_tenants inventory plugin, this needs tnoctl on the
controller (the repository checkout, or the package in an execution environment).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[3]  # roles/tno_mail/filter_plugins/ -> the repository root
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from tnoctl.config import maildocs  # noqa: E402 - after the path set-up above


def tno_mta_sts_policy(domain: str, mode: str = maildocs.MTA_STS_DEFAULT_MODE) -> str:
    """The MTA-STS policy text of ``domain`` (tnoctl.config.maildocs.mta_sts_policy)."""
    return maildocs.mta_sts_policy(str(domain), str(mode))


def tno_autoconfig_xml(domain: str, display_name: str) -> str:
    """Thunderbird's autoconfig document of ``domain`` (tnoctl.config.maildocs.autoconfig_xml)."""
    return maildocs.autoconfig_xml(str(domain), str(display_name))


def tno_mail_fqdn(domain: str) -> str:
    """The mail host name of ``domain`` (its MX target)."""
    return maildocs.mail_fqdn(str(domain))


class FilterModule:
    """Ansible entry point."""

    def filters(self) -> dict[str, Any]:
        return {"tno_mta_sts_policy": tno_mta_sts_policy, "tno_autoconfig_xml": tno_autoconfig_xml,
                "tno_mail_fqdn": tno_mail_fqdn}
