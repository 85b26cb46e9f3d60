"""The one schema for tenant files (`tenants/<slug>.yml`) and platform variables (`platform.yml`).

Every key is described (docs/inventory-reference.md is generated from these descriptions by
``python -m tnoctl.config.docgen``) and unknown keys are rejected. Validators raise ValueError
with a short human message; tnoctl.config.messages turns pydantic errors into `file:field: message`.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tnoctl.config.window import Window

SLUG_RE = re.compile(r"^(?=.{1,40}\Z)[a-z0-9]+(?:-[a-z0-9]+)*\Z")
INSEE_RE = re.compile(r"^(?:\d{5}|2[AB]\d{3})\Z")
DOMAIN_RE = re.compile(r"^(?=.{1,253}\Z)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}\Z")
LOCAL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?\Z")
SIZE_RE = re.compile(r"^(\d{1,9})([KMGT])\Z")
VAULT_RE = re.compile(r"^tno_vault_[a-z0-9_]+\Z")
HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,253}\Z")
WOPI_RE = re.compile(r"^https://(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)(?::\d{1,5})?"
                     r"(?:/[A-Za-z0-9._~%/-]*)?\Z")
VERSION_RE = re.compile(r"^[0-9][0-9A-Za-z.+~-]*\Z")
URL_RE = re.compile(r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?(?:/[A-Za-z0-9._~%/+-]*)?\Z")
APT_WORD_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]{0,63}\Z")
# borg serve --storage-quota: decimal units as borg parses them (10M is borg's minimum); empty: none
STORAGE_QUOTA_RE = re.compile(r"^(?:|(?:[1-9]\d{1,5}|[1-9]\d{0,5}(?=[GT]))[MGT])\Z")
APT_SUITE_RE = re.compile(r"^(?:\./|[A-Za-z0-9][A-Za-z0-9._/+-]{0,63})\Z")
"""A suite name (component layout) or a directory ending in "/" such as "./" (flat layout)."""
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]{1,62}\Z")
PROBE_WOPI_RE = re.compile(r"^http://(?:\d{1,3}(?:\.\d{1,3}){3}|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)\Z")
ACME_URL_RE = re.compile(r"^https://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?"
                         r"(?:/[A-Za-z0-9._~%/+-]*)?\Z")
DNS_SERVER_RE = re.compile(r"^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}"
                           r"[A-Za-z0-9])?)(?::\d{1,5})?\Z")
"""A DNS server: IPv4, [IPv6] or host name, optionally :port (no whitespace, no control characters)."""
TSIG_NAME_RE = re.compile(r"^(?=.{1,253}\Z)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*"
                          r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?\Z")
PATH_RE = re.compile(r"^[A-Za-z0-9._/+~@:-]{1,200}\Z")
RELAYHOST_RE = re.compile(r"^(?:|\[[A-Za-z0-9.:-]{1,253}\](?::\d{1,5})?|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?"
                          r"(?::\d{1,5})?)\Z")
"""Platform values land verbatim in main.cf, apt sources and paths: no whitespace, quotes or control chars."""
ADDRESS_RE = re.compile(r"^(?=.{3,254}\Z)[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?@"
                        r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}\Z")
"""A lower-case mail address whose parts are safe in Postfix/Rspamd maps (no space, comma or quote)."""
SIZE_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def _short(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:60] + "...")


def _check(regex: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"{_short(value)} is not {what}")
        return value

    return AfterValidator(check)


def size_bytes(text: str) -> int:
    """'5G' -> 5 * 1024**3 (binary units, as Dovecot reads them)."""
    match = SIZE_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"{_short(text)} is not a size like 5G")
    return int(match[1]) * SIZE_UNITS[match[2]]


def _window(value: str) -> str:
    Window.parse(value)
    return value


def _https(value: str) -> str:
    if not WOPI_RE.fullmatch(value):
        raise ValueError(f"{_short(value)} is not an https:// URL (WOPI hosts must use https)")
    return value


Slug = Annotated[str, Field(max_length=40), _check(SLUG_RE, "a slug ([a-z0-9-], at most 40, no edge dash)")]
Domain = Annotated[str, Field(max_length=253), _check(DOMAIN_RE, "a lower-case domain name like example.fr")]
HostName = Annotated[str, Field(max_length=63), _check(HOST_RE, "a host name from hosts.yml")]
Size = Annotated[str, Field(max_length=12), AfterValidator(lambda v: size_bytes(v) and v)]
NextHop = Annotated[str, Field(min_length=1, max_length=200), _check(RELAYHOST_RE, "an SMTP next hop like "
                                                                     "[192.0.2.25]:25 or mx.example.fr")]
"""An SMTP next hop (the relayhost syntax, never empty): lands verbatim after ``smtp:`` in the transport map."""
def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError(f"{_short(value)} contains control characters (newline, tab, escape...)")
    return value


Text = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]


AptWord = Annotated[str, Field(max_length=64), _check(APT_WORD_RE, "an APT suite or component name")]
PathText = Annotated[str, Field(max_length=200), _check(PATH_RE, "a path without spaces or special characters")]
VaultName = Annotated[str, Field(max_length=120), _check(VAULT_RE, "a vault name like tno_vault_x")]


class Strict(BaseModel):
    """Base: unknown keys are errors; no silent coercion of numbers into strings."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)


class Placement(Strict):
    """Which host serves each service of the tenant."""

    mail: HostName | None = Field(None, description="Mail host (a member of group `mail` in hosts.yml).")
    office: HostName | None = Field(None, description="Office host (a member of group `office` in hosts.yml).")


class SendLimit(Strict):
    """Outbound limit per authenticated user (Rspamd ratelimit, counted in the mail host's local Redis)."""

    messages: int = Field(200, ge=1, le=1_000_000, description="Messages a user may send per period (also the "
                          "burst: a full bucket refills at this rate).")
    per: Literal["hour", "day"] = Field("hour", description="Period: hour or day.")


class Mailbox(Strict):
    """One mailbox of the commune; its password lives in the vault, never here."""

    local: Annotated[str, Field(max_length=64), _check(LOCAL_RE, "a mailbox local part like jean.dupont")] = (
        Field(description="Local part; the address is local@domain.")
    )
    domain: Domain | None = Field(
        None, description="Mail domain; defaults to the primary domain; must be one of `domains`."
    )
    name: Text = Field(description="Display name of the mailbox owner (unicode allowed).")
    quota: Size = Field("1G", description="Mailbox quota: digits + K, M, G or T (binary units), e.g. 2G.")
    password_vault: Annotated[str, Field(max_length=120), _check(VAULT_RE, "a vault name like tno_vault_x")] = (
        Field(description="Name of the vault variable holding the password (`tno_vault_[a-z0-9_]+`).")
    )
    send_limit: SendLimit | None = Field(
        None, description="This mailbox's own outbound limit instead of the platform's `tno_mail_send_limit`."
    )


WopiHost = Annotated[str, Field(max_length=200), AfterValidator(_https)]


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{_short(value)} is not an IP address or network like 192.0.2.10 or 192.0.2.0/24") from None
    return value


Network = Annotated[str, Field(max_length=43), AfterValidator(_network)]


class Office(Strict):
    """Online office settings of the tenant."""

    wopi_hosts: list[WopiHost] = Field(
        default_factory=list, max_length=20, description="WOPI hosts (https URLs) allowed to open documents."
    )


class Contact(Strict):
    """Someone to call about this commune."""

    name: Text = Field(description="Contact's name.")
    email: Annotated[str, Field(max_length=254), _check(EMAIL_RE, "an e-mail address")] = Field(
        description="Contact's e-mail address."
    )
    role: Literal["dsi", "elu", "dgs", "support", "other"] = Field(
        "other", description="Role: dsi, elu, dgs, support or other."
    )


class Retention(Strict):
    """Borg retention counts (how many daily, weekly and monthly archives to keep)."""

    keep_daily: int = Field(7, ge=0, le=366, description="Daily archives kept.")
    keep_weekly: int = Field(4, ge=0, le=104, description="Weekly archives kept.")
    keep_monthly: int = Field(6, ge=0, le=120, description="Monthly archives kept.")


class BackupOverride(Strict):
    """Per-tenant overrides of the platform retention (unset keys keep the platform default)."""

    keep_daily: int | None = Field(None, ge=0, le=366, description="Daily archives kept.")
    keep_weekly: int | None = Field(None, ge=0, le=104, description="Weekly archives kept.")
    keep_monthly: int | None = Field(None, ge=0, le=120, description="Monthly archives kept.")


Address = Annotated[str, Field(max_length=254), _check(ADDRESS_RE, "a lower-case address like jean.dupont@example.fr")]
Local = Annotated[str, Field(max_length=64), _check(LOCAL_RE, "a local part like jean.dupont")]
Score = Annotated[float, Field(gt=0, le=1000)]


class SpamThresholds(Strict):
    """Rspamd scores at which inbound mail is rejected (5xx), marked (X-Spam header) or greylisted (4xx)."""

    reject: Score = Field(15.0, description="Score from which a message is rejected at SMTP time.")
    add_header: Score = Field(6.0, description="Score from which a message is delivered with an X-Spam header.")
    greylist: Score | None = Field(None, description="Score from which a first delivery is deferred (greylisting, "
                                   "state in the local Redis); null: no greylisting.")

    @model_validator(mode="after")
    def _ordered(self) -> SpamThresholds:
        """greylist < add_header < reject, or a threshold would never be reached."""
        check_order(self.reject, self.add_header, self.greylist)
        return self


def check_order(reject: float | None, add_header: float | None, greylist: float | None) -> None:
    steps = [(n, v) for n, v in (("greylist", greylist), ("add_header", add_header), ("reject", reject))
             if v is not None]
    for (low_name, low), (high_name, high) in itertools.pairwise(steps):
        if low >= high:
            raise ValueError(f"{low_name} ({low:g}) must be lower than {high_name} ({high:g})")


class SpamOverride(Strict):
    """Per-tenant thresholds for mail to the tenant's domains (unset keys keep the platform's)."""

    reject: Score | None = Field(None, description="Reject score for mail to this commune's domains.")
    add_header: Score | None = Field(None, description="Add-header score for mail to this commune's domains.")
    greylist: Score | None = Field(None, description="Greylist score for mail to this commune's domains.")

    @model_validator(mode="after")
    def _ordered(self) -> SpamOverride:
        check_order(self.reject, self.add_header, self.greylist)
        return self


class Alias(Strict):
    """An extra address of the commune: delivered to its own mailboxes and/or forwarded outside the platform."""

    local: Local = Field(description="Local part of the alias; the address is local@domain.")
    domain: Domain | None = Field(
        None, description="Domain of the alias; defaults to the primary domain; must be one of `domains`."
    )
    to: list[Address] = Field(
        default_factory=list, max_length=50, description="Mailboxes (or other aliases) of this commune receiving "
        "the mail: addresses in the commune's own domains only."
    )
    forward: list[Address] = Field(
        default_factory=list, max_length=10, description="Explicit forwards to addresses outside the platform "
        "(never a domain of the platform)."
    )

    @model_validator(mode="after")
    def _has_target(self) -> Alias:
        if not self.to and not self.forward:
            raise ValueError("an alias needs at least one target in `to` or `forward`")
        return self


class TenantMail(Strict):
    """Addresses and filtering of the commune's mail."""

    postmaster: Address | None = Field(
        None, description="Mailbox getting postmaster@ and abuse@ of the commune's domains (RFC 2142); "
        "default: the first one, if any."
    )
    aliases: list[Alias] = Field(default_factory=list, max_length=500, description="Aliases and forwards.")
    spam: SpamOverride = Field(default_factory=SpamOverride, description="Spam threshold overrides.")


class TenantDns(Strict):
    """Who publishes the commune's DNS records (`tnoctl dns plan|check|publish`, deploy's DNS step)."""

    zone: Literal["platform", "external"] = Field(
        "platform", description="`platform`: the platform's DNS server (tno_dns_server) serves the commune's "
        "zones; `dns publish` and `deploy` send its records there by RFC 2136. `external`: the zones are "
        "hosted elsewhere (e.g. at the commune's registrar): tnoctl never updates them, `dns plan` prints the "
        "records for the commune to publish and `dns check` resolves them through the zones' own name "
        "servers. Not allowed with tno_tls_mode `acme` (its DNS-01 challenges need the platform's server).")


class Tenant(Strict):
    """One commune (`tenants/<slug>.yml`)."""

    slug: Slug = Field(description="Identifier: [a-z0-9-], at most 40 characters, equal to the file name.")
    name: Text = Field(description="Display name of the commune (unicode allowed).")
    insee: Annotated[str, _check(INSEE_RE, "an INSEE code (5 digits, or 2A/2B + 3 digits)")] = Field(
        description='INSEE commune code, quoted: "69256" (Corsica: 2A004).'
    )
    domains: list[Domain] = Field(min_length=1, max_length=20, description="Mail domains; the first is primary.")
    services: list[Literal["mail", "office"]] = Field(
        default_factory=lambda: ["mail", "office"], max_length=2, description="Enabled services: mail, office."
    )
    placement: Placement = Field(default_factory=Placement, description="Host serving each service.")
    mailboxes: list[Mailbox] = Field(default_factory=list, max_length=5000, description="Mailboxes.")
    mail: TenantMail = Field(default_factory=TenantMail, description="Aliases, RFC 2142 addresses, spam thresholds.")
    office: Office = Field(default_factory=Office, description="Online office settings.")
    maintenance_window: Annotated[str, Field(max_length=100), AfterValidator(_window)] = Field(
        "Sun 02:00-05:00", description="When disruptive work may run (Europe/Paris), e.g. 'Mon-Fri 22:00-06:00'."
    )
    pilot: bool = Field(False, description="Pilot communes get upgrades first (wave 0).")
    contacts: list[Contact] = Field(default_factory=list, max_length=20, description="People to call.")
    backup: BackupOverride = Field(default_factory=BackupOverride, description="Backup retention overrides.")
    dns: TenantDns = Field(default_factory=TenantDns, description="Where the commune's DNS zones are served.")

    @property
    def primary_domain(self) -> str:
        """The first domain: default domain of mailboxes and service names."""
        return self.domains[0]


class Platform(Strict):
    """Platform variables (`group_vars/all/platform.yml`)."""

    tno_platform_name: Text = Field(description="Name of this platform (shown in reports).")
    tno_office_version: Annotated[str, Field(max_length=40), _check(VERSION_RE, "a package version")] = Field(
        description="Pinned coolwsd (online office) package version."
    )
    tno_office_apt_repo_url: Annotated[str, Field(max_length=200), _check(URL_RE, "an http(s) URL")] = Field(
        description="APT repository serving the office packages."
    )
    tno_office_apt_suite: Annotated[str, Field(max_length=64), _check(APT_SUITE_RE, "an APT suite (or ./ for a "
                                                                     "flat repository)")] = Field(
        description="Suite of the office APT repository; for a flat repository (no dists/), the directory "
        "relative to the URL, ending in / (usually ./)."
    )
    tno_office_apt_components: list[AptWord] = Field(
        max_length=8, description="Components of the office APT repository (a list, e.g. [main]); an empty list "
        "means a flat repository (no Components: line, tno_office_apt_suite ends in /)."
    )
    tno_office_companion_packages: list[Annotated[str, Field(max_length=63), _check(PACKAGE_RE, "a Debian "
                                                                                    "package name")]] = Field(
        default_factory=list, max_length=10, description="Packages installed, pinned and held at exactly "
        "tno_office_version together with coolwsd, because they must move in lockstep with it (e.g. the "
        "vendor's brand and kit packages)."
    )
    tno_office_probe_wopi_host: Annotated[str, Field(max_length=120), _check(PROBE_WOPI_RE, "http://<address "
                                                                               "of the probing machine>")] | None = (
        Field(None, description="http://<address> of the machine running tnoctl's probes as office hosts reach "
              "it: the document-open probe serves its one-shot WOPI endpoint there (any port), and every tenant's "
              "WOPI alias group allows it. Unset: no document-open probe.")
    )
    tno_office_apt_keyring_src: PathText = Field(description="Controller path of the office repository keyring.")
    tno_mail_release: Annotated[str, Field(max_length=40), _check(VERSION_RE,
                                                                  "a release number like 1 or 2025.1")] = Field(
        "1", description="Pinned configuration release of the mail role (what `tnoctl upgrade mail --to` moves)."
    )
    tno_mail_relayhost: Annotated[str, Field(max_length=200), _check(RELAYHOST_RE, "a relay host like "
                                                                   "[smtp.example.fr]:587 (or empty)")] = Field(
        "", description="Postfix relayhost: host, [host] or either with :port; empty means direct MX delivery."
    )
    tno_mail_transport_overrides: dict[Domain, NextHop] = Field(
        default_factory=dict, max_length=200, description="Explicit routing overrides: recipient domain -> SMTP "
        "next hop (host, [host] or either with :port; [..] skips the MX lookup), written to the Postfix transport "
        "map of every mail host except the one serving that domain. Empty (the default): every domain, the "
        "platform's communes included, is routed by its DNS MX record (or through tno_mail_relayhost). An "
        "overridden destination gets opportunistic TLS (see docs/certificates.md).")
    tno_mail_spam_thresholds: SpamThresholds = Field(
        default_factory=SpamThresholds, description="Inbound Rspamd thresholds (tenants may override them in "
        "mail.spam); SPF, DKIM, DMARC and ARC are always checked and a failing DMARC p=reject is rejected."
    )
    tno_mail_send_limit: SendLimit | None = Field(
        default_factory=SendLimit, description="Per-user outbound limit of authenticated submission (over it: 4xx, "
        "retried later by the client); null: no limit."
    )
    tno_office_extra_wopi_hosts: dict[Slug, list[WopiHost]] = Field(
        default_factory=dict, description="Per tenant slug, WOPI hosts (https URLs) the tenant may list outside "
        "its own domains (a WOPI host must otherwise be one of its domains or a sub-domain)."
    )
    tno_office_admin_allow: list[Network] = Field(
        default_factory=list, max_length=50, description="Addresses or networks allowed on the office hosts' "
        "management listener (admin console, /cool/getMetrics), e.g. the monitoring host and the operator "
        "network; empty: no management listener. These surfaces are never served on a tenant vhost."
    )
    tno_tls_cert_dir: PathText = Field(description="Controller dir with <inventory_hostname>.crt/.key and ca.crt "
                                       "(used when tno_tls_mode is `files`).")
    tno_tls_mode: Literal["files", "acme"] = Field(
        "files", description="Where service certificates come from: `files` (tno_tls_cert_dir: the lab CA or the "
        "operator's own files, for offline sites) or `acme` (one certificate per tenant from an ACME CA by "
        "DNS-01, see docs/certificates.md).")
    tno_mail_mta_sts_mode: Literal["testing", "enforce", "none"] = Field(
        "testing", description="`mode:` of the MTA-STS policy (RFC 8461) every mail domain's host serves at "
        "https://mta-sts.<domain>/.well-known/mta-sts.txt (its id in `_mta-sts` TXT follows the text): "
        "`testing` (senders deliver even when TLS to the MX fails, and report it), `enforce` (senders refuse "
        "an MX without a valid certificate for mail.<domain>: only with publicly trusted certificates, e.g. "
        "tno_tls_mode `acme`), `none` (withdraw a policy). Changing it changes the id: run `tnoctl deploy` "
        "then `tnoctl dns publish`.")
    tno_acme_directory_url: Annotated[str, Field(max_length=200), _check(ACME_URL_RE, "an https:// ACME "
                                                                         "directory URL")] | None = Field(
        None, description="ACME directory URL (e.g. https://acme-v02.api.letsencrypt.org/directory). Required "
        "when tno_tls_mode is `acme`.")
    tno_acme_contact: Annotated[str, Field(max_length=254), _check(EMAIL_RE, "an e-mail address")] | None = Field(
        None, description="Contact e-mail of the ACME account (expiry notices). Required when tno_tls_mode is "
        "`acme`.")
    tno_acme_propagation_seconds: int = Field(
        10, ge=0, le=600, description="Seconds certbot waits after its RFC 2136 update before the CA validates "
        "the DNS-01 challenge: long enough for every authoritative server of the zone to have it (NOTIFY + "
        "transfer to the secondaries). A zone served by one server only (the lab) needs none.")
    tno_acme_eab_kid_vault: VaultName | None = Field(
        None, description="Vault variable holding the External Account Binding key id, for CAs that require "
        "one; unset: no EAB. Set together with tno_acme_eab_hmac_vault.")
    tno_acme_eab_hmac_vault: VaultName | None = Field(
        None, description="Vault variable holding the External Account Binding HMAC key (base64url).")
    tno_dns_server: Annotated[str, Field(max_length=260), _check(DNS_SERVER_RE, "a DNS server like 192.0.2.53, "
                                                                 "[2001:db8::53]:53 or ns1.example.fr")] | None = (
        Field(None, description="Primary authoritative DNS server that accepts RFC 2136 updates (ACME DNS-01 "
              "challenges, `tnoctl dns publish`) and that `tnoctl dns check` queries."))
    tno_dns_tsig_key_name: Annotated[str, Field(max_length=253), _check(TSIG_NAME_RE, "a TSIG key name like "
                                                                        "tno-update.")] | None = Field(
        None, description="Name of the TSIG key signing RFC 2136 updates (as configured on the DNS server).")
    tno_dns_tsig_algorithm: Literal["hmac-sha256", "hmac-sha384", "hmac-sha512"] = Field(
        "hmac-sha256", description="TSIG algorithm of that key.")
    tno_dns_tsig_secret_vault: VaultName | None = Field(
        None, description="Vault variable holding the TSIG secret (base64). Never printed or logged.")
    tno_backup_host: HostName = Field(description="Host (in group `backup`) receiving borg backups.")
    tno_backup_retention: Retention = Field(default_factory=Retention, description="Default retention.")
    tno_backup_storage_quota: Annotated[str, Field(max_length=8), _check(
        STORAGE_QUOTA_RE, "a borg storage quota like 500G or 2T (at least 10M; empty: none)")] = Field(
        "", description="Quota of each tenant's repository on the backup host (`borg serve --storage-quota`, "
        "decimal units M/G/T, at least 10M): a client host cannot fill the shared backup disk. Empty: no quota."
    )
    tno_timezone: Literal["Europe/Paris"] = Field("Europe/Paris", description="Time zone of the hosts.")

    @model_validator(mode="after")
    def _acme_complete(self) -> Platform:
        """`acme` needs a directory, a contact and a DNS server + TSIG key; EAB comes as a pair."""
        if self.tno_tls_mode == "acme":
            missing = [name for name in ("tno_acme_directory_url", "tno_acme_contact", "tno_dns_server",
                                         "tno_dns_tsig_key_name", "tno_dns_tsig_secret_vault")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"tno_tls_mode is acme but {', '.join(missing)} is not set")
        if (self.tno_acme_eab_kid_vault is None) != (self.tno_acme_eab_hmac_vault is None):
            raise ValueError("tno_acme_eab_kid_vault and tno_acme_eab_hmac_vault must be set together")
        dns_update = (self.tno_dns_tsig_key_name, self.tno_dns_tsig_secret_vault)
        if any(v is not None for v in dns_update) and None in dns_update:
            raise ValueError("tno_dns_tsig_key_name and tno_dns_tsig_secret_vault must be set together")
        return self

    @model_validator(mode="after")
    def _flat_or_components(self) -> Platform:
        """A flat repository has no components and a suite ending in "/"; a component repository neither."""
        flat_suite = self.tno_office_apt_suite.endswith("/")
        if flat_suite and self.tno_office_apt_components:
            raise ValueError("tno_office_apt_suite ends in / (a flat repository) but tno_office_apt_components "
                             "is not empty: give [] for a flat repository")
        if not flat_suite and not self.tno_office_apt_components:
            raise ValueError("tno_office_apt_components is empty (a flat repository) but tno_office_apt_suite "
                             "does not end in /: use ./ (or the directory) for a flat repository")
        return self
