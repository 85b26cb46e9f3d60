"""Exporter-toolkit style web config: optional TLS and bcrypt basic auth for ``tnoctl exporter``.

Same file format as Prometheus' exporters (``--web.config.file``), so operators reuse what they
know::

    tls_server_config: {cert_file: /etc/tnoctl/exporter.crt, key_file: /etc/tnoctl/exporter.key}
    basic_auth_users: {prometheus: $2y$10$...}   # bcrypt hashes (htpasswd -nBC 10 "" | tr -d ':\\n')

Unknown keys are rejected (a typo must not silently disable auth), and so is a setting the exporter
cannot honour: ``client_auth_type`` is enforced for ``NoClientCert``, ``VerifyClientCertIfGiven``
and ``RequireAndVerifyClientCert`` (the latter two need ``client_ca_file``; a ``client_ca_file``
alone means ``RequireAndVerifyClientCert``); ``RequestClientCert`` and ``RequireAnyClientCert``
(accept unverified certificates) cannot be done with Python's ssl module and are refused rather
than silently served without client certificates. Successful password checks
are cached by a SHA-256 of the credentials so bcrypt's cost is paid once per client, not per scrape.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import bcrypt

from tnoctl.config import yamlio
from tnoctl.errors import InvalidInput

_TOP = {"tls_server_config", "basic_auth_users", "http_server_config"}
_TLS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
_UNSUPPORTED_AUTH = ("RequestClientCert", "RequireAnyClientCert")


@dataclass
class WebConfig:
    """Parsed web config: TLS files (optional) and user → bcrypt hash (optional)."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    client_auth_type: str = "NoClientCert"
    users: dict[str, bytes] = field(default_factory=dict)
    _ok_cache: set[bytes] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tls(self) -> bool:
        """True when the exporter must serve HTTPS."""
        return self.cert_file is not None

    @property
    def authenticates(self) -> bool:
        """True when every client must prove who it is (basic auth users or a verified certificate)."""
        return bool(self.users) or (self.tls and self.client_auth_type == "RequireAndVerifyClientCert")

    def ssl_context(self) -> ssl.SSLContext:
        """Server-side TLS context from the configured files."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = _VERSIONS[self.min_version]
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        ctx.verify_mode = _CLIENT_AUTH[self.client_auth_type]
        if ctx.verify_mode != ssl.CERT_NONE:
            assert self.client_ca_file is not None  # load_web_config refuses the combination
            ctx.load_verify_locations(str(self.client_ca_file))
        return ctx

    def authorized(self, header: str | None) -> bool:
        """Check an ``Authorization`` header; always True when no users are configured."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        digest = hashlib.sha256(f"{user}\0{password}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(digest, d) for d in self._ok_cache):
                return hashed is not None
        if hashed is None:
            bcrypt.checkpw(b"x", _DUMMY)  # same cost for unknown users: no user enumeration by timing
            return False
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            with self._lock:
                self._ok_cache.add(digest)
        return ok


_DUMMY = bcrypt.hashpw(b"dummy", bcrypt.gensalt(rounds=10))


def load_web_config(path: Path) -> WebConfig:
    """Read and validate a web config file; InvalidInput lists every problem at once."""
    try:  # the inventory files' reader: regular file, bounded, no aliases, duplicate keys refused
        doc = yamlio.loads(yamlio.read_file(path, what="web config"), what="web config") or {}
    except FileNotFoundError:
        raise InvalidInput(f"web config {path}: cannot read: no such file") from None
    except yamlio.YamlProblem as exc:
        raise InvalidInput(f"web config {path}: {exc.where}: {exc.message}") from None
    errors: list[str] = []
    if not isinstance(doc, dict):
        raise InvalidInput(f"web config {path}: must be a mapping")
    errors += [f"{path}: {k}: unknown key (allowed: {', '.join(sorted(_TOP))})" for k in doc if k not in _TOP]
    cfg = WebConfig()
    tls = doc.get("tls_server_config") or {}
    if not isinstance(tls, dict):
        errors.append(f"{path}: tls_server_config: must be a mapping")
        tls = {}
    errors += [f"{path}: tls_server_config.{k}: unknown or unsupported key" for k in tls if k not in _TLS]
    if tls:
        for key in ("cert_file", "key_file"):
            if not tls.get(key):
                errors.append(f"{path}: tls_server_config.{key}: required when TLS is configured")
        base = path.parent
        cfg.cert_file = base / tls["cert_file"] if tls.get("cert_file") else None
        cfg.key_file = base / tls["key_file"] if tls.get("key_file") else None
        cfg.client_ca_file = base / tls["client_ca_file"] if tls.get("client_ca_file") else None
        cfg.min_version = str(tls.get("min_version", "TLS12"))
        default_auth = "RequireAndVerifyClientCert" if cfg.client_ca_file else "NoClientCert"
        cfg.client_auth_type = str(tls.get("client_auth_type") or default_auth)
        if cfg.client_auth_type in _UNSUPPORTED_AUTH:
            errors.append(f"{path}: tls_server_config.client_auth_type: {cfg.client_auth_type} is not supported "
                          "(use RequireAndVerifyClientCert or VerifyClientCertIfGiven with client_ca_file)")
        elif cfg.client_auth_type not in _CLIENT_AUTH:
            errors.append(f"{path}: tls_server_config.client_auth_type: one of {', '.join(_CLIENT_AUTH)}")
        elif cfg.client_auth_type != "NoClientCert" and cfg.client_ca_file is None:
            errors.append(f"{path}: tls_server_config.client_auth_type: {cfg.client_auth_type} needs "
                          "client_ca_file (the CA that signs the client certificates)")
        if cfg.min_version not in _VERSIONS:
            errors.append(f"{path}: tls_server_config.min_version: one of {', '.join(_VERSIONS)}")
    users = doc.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        errors.append(f"{path}: basic_auth_users: must be a mapping user: bcrypt-hash")
        users = {}
    for user, hashed in users.items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            errors.append(f"{path}: basic_auth_users.{user}: not a bcrypt hash")
        else:
            cfg.users[str(user)] = hashed.encode()
    if errors:
        raise InvalidInput(f"web config {path} is invalid", details=errors)
    return cfg
