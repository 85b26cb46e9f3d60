"""`tnoctl lab smoke`: prove each lab commune's mail and office work, with real protocols.

Per tenant: submit a message on 587 (STARTTLS + AUTH) from one mailbox to itself, read
it back over IMAPS, and fetch `https://office.<domain>/hosting/capabilities` through
the tenant's proxy. TLS is verified against the lab CA. Used by `make demo`.
"""

from __future__ import annotations

import imaplib
import json
import smtplib
import ssl
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from http.client import HTTPSConnection
from pathlib import Path

SPECIAL = {"canary", "quota-test"}


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


class _SniContext(ssl.SSLContext):
    """A client context that presents a fixed server name: the lab has no DNS, we connect by address."""

    server_name: str = ""

    def wrap_socket(self, sock, *args, **kwargs):  # type: ignore[override]
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(ca: Path, server_name: str) -> ssl.SSLContext:
    """TLS client context trusting only ``ca`` and verifying ``server_name``."""
    ctx = _SniContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.server_name = server_name
    ctx.load_verify_locations(cafile=str(ca))
    return ctx


def mail_roundtrip(address: str, password: str, host_ip: str, server_name: str, ca: Path) -> str:
    """Submit to self on 587 and find it over IMAPS; returns 'delivered in N.NNs' or raises."""
    token = uuid.uuid4().hex
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = address, address, f"tnoctl lab smoke {token}"
    msg.set_content("Bonjour, ceci est un message de test du lab tnoctl.\n")
    started = time.monotonic()
    ctx = tls_context(ca, server_name)
    with smtplib.SMTP(host_ip, 587, local_hostname="tnoctl-smoke", timeout=20) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(address, password)
        smtp.send_message(msg)
    deadline = started + 30
    while time.monotonic() < deadline:
        with imaplib.IMAP4_SSL(host_ip, 993, ssl_context=ctx, timeout=20) as imap:
            imap.login(address, password)
            imap.select("INBOX")
            _typ, data = imap.search(None, "SUBJECT", f'"{token}"')
            ids = data[0].split() if data and data[0] else []
            if ids:
                for num in ids:
                    imap.store(num, "+FLAGS", "\\Deleted")
                imap.expunge()
                return f"delivered in {time.monotonic() - started:.2f}s"
        time.sleep(0.3)
    raise TimeoutError("message not found over IMAPS within 30 s")


def office_capabilities(host_ip: str, server_name: str, ca: Path) -> dict:
    """GET /hosting/capabilities through the tenant's proxy (TLS verified, SNI = office.<domain>)."""
    conn = HTTPSConnection(host_ip, 443, context=tls_context(ca, server_name), timeout=20)
    try:
        conn.request("GET", "/hosting/capabilities", headers={"Host": server_name})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
        return json.loads(body)
    finally:
        conn.close()


def smoke_tenant(tenant, inventory, secrets: dict[str, str], ca: Path) -> SmokeResult:
    """Run the mail round trip and the office check for one tenant (errors become the result)."""
    domain = tenant.domains[0]
    mail_ok, mail_detail, office_ok, office_detail = True, "not enabled", True, "not enabled"
    if "mail" in tenant.services:
        box = next(m for m in tenant.mailboxes if m.local not in SPECIAL)
        address = f"{box.local}@{box.domain or domain}"
        ip = inventory.hosts[tenant.placement.mail].address
        try:
            mail_detail = mail_roundtrip(address, secrets[box.password_vault], ip, f"mail.{domain}", ca)
        except Exception as exc:  # reported per tenant in the table, never a crash
            mail_ok, mail_detail = False, f"{type(exc).__name__}: {exc}"
    if "office" in tenant.services:
        ip = inventory.hosts[tenant.placement.office].address
        try:
            caps = office_capabilities(ip, f"office.{domain}", ca)
            office_detail = f"{caps.get('productVersion')} via https://office.{domain}"
        except Exception as exc:
            office_ok, office_detail = False, f"{type(exc).__name__}: {exc}"
    return SmokeResult(tenant.slug, mail_ok, mail_detail, office_ok, office_detail)
