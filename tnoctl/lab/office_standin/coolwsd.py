#!/usr/bin/python3
"""tnoctl lab stand-in for coolwsd -- NOT Collabora Online.

Why this exists: Collabora Online's packages cannot be fetched in the tnoctl lab environment, yet
install, upgrade, rollback, health checks and monitoring of the office service must be exercised for
real. This small daemon (Python 3 standard library only, runs on Debian 12's python3) reproduces the
operational surface tnoctl relies on and nothing else: no document is ever rendered or edited.

It reads /etc/coolwsd/coolwsd.xml with the real element names (net.listen, ssl.enable,
ssl.termination, ssl.cert_file_path, ssl.key_file_path, storage.wopi.alias_groups,
admin_console.username/password, security.enable_metrics_unauthenticated, server_name) and accepts
the real command-line forms --config-file=PATH, --port=N (default 9980), --o:KEY=VALUE, --disable-ssl,
--version. See README.md next to this file (installed as /usr/share/doc/coolwsd/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import signal
import ssl
import sys
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

PACKAGE_VERSION = "@PACKAGE_VERSION@"
"""Substituted at package build time; left as is when run from the source tree."""
BROKEN_BUILD = "@BROKEN_BUILD@"
"""'1' in the deliberately broken build (24.04.12.1): runs, but its health endpoints fail."""

PRODUCT_NAME = "tnoctl lab stand-in for coolwsd (not Collabora Online)"
DEFAULT_CONFIG = "/etc/coolwsd/coolwsd.xml"
DEFAULT_PORT = 9980
BROKEN_MESSAGE = "kit process failed to start (deliberately broken lab stand-in build)"

DEFAULTS = {
    "net.listen": "any",
    "ssl.enable": "true",
    "ssl.termination": "false",
    "ssl.cert_file_path": "/etc/coolwsd/cert.pem",
    "ssl.key_file_path": "/etc/coolwsd/key.pem",
    "storage.wopi[@allow]": "true",
    "storage.wopi.alias_groups[@mode]": "first",
    "admin_console.enable": "true",
    "admin_console.username": "",
    "admin_console.password": "",
    "security.enable_metrics_unauthenticated": "false",
    "server_name": "",
}

DISCOVERY_APPS = {
    "writer": ("odt", "ott", "docx", "doc", "rtf", "txt"),
    "calc": ("ods", "ots", "xlsx", "xls", "csv"),
    "impress": ("odp", "otp", "pptx", "ppt"),
    "draw": ("odg", "otg", "pdf"),
}


def version() -> str:
    """The package version, or a marker when running unbuilt from the source tree."""
    return "0.0.0-source" if PACKAGE_VERSION.startswith("@") else PACKAGE_VERSION


def is_broken() -> bool:
    return BROKEN_BUILD == "1"


def version_hash() -> str:
    """Stands in for the real git hash: stable per version, used in /browser/<hash>/ URLs."""
    return hashlib.sha1(version().encode()).hexdigest()[:10]


def log(message: str) -> None:
    """One line to stderr (journald under systemd). Never pass secrets or query strings here."""
    sys.stderr.write(f"coolwsd-standin[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


class Config:
    """coolwsd.xml plus --o: overrides, addressed with the real dotted keys ("ssl.enable", "a.b[@attr]")."""

    def __init__(self, root: ET.Element | None, overrides: dict[str, str]) -> None:
        self.root = root
        self.overrides = overrides

    @classmethod
    def load(cls, path: str | None, overrides: dict[str, str]) -> Config:
        if path is None:
            return cls(None, overrides)
        return cls(ET.parse(path).getroot(), overrides)

    def element(self, key: str) -> ET.Element | None:
        if self.root is None:
            return None
        node: ET.Element | None = self.root
        for part in key.split("."):
            node = node.find(part) if node is not None else None
        return node

    def get(self, key: str) -> str:
        if key in self.overrides:
            return self.overrides[key]
        match = re.fullmatch(r"(.+)\[@(\w+)\]", key)
        node = self.element(match.group(1) if match else key)
        if node is not None:
            value = node.get(match.group(2)) if match else (node.text or "").strip()
            if value:
                return value
            if not match and node.get("default") is not None:
                return node.get("default", "")
        return DEFAULTS.get(key, "")

    def get_bool(self, key: str) -> bool:
        return self.get(key).strip().lower() in ("true", "1", "yes", "on")


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, default ports filled in; None if it is not one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


class WopiPolicy:
    """Which WOPI hosts may use this server (storage.wopi.alias_groups, like the real HostUtil).

    mode="groups": a WOPISrc is allowed if its scheme+host+port equals a group's <host allow="true">
    or fully matches one of the group's <alias> regular expressions ("scheme://host:port" form).
    mode="first" (the real default): the first WOPI host seen is allowed, every other one is refused.
    storage.wopi allow="false": every WOPISrc is refused.
    """

    def __init__(self, config: Config) -> None:
        self.enabled = config.get_bool("storage.wopi[@allow]")
        self.mode = config.get("storage.wopi.alias_groups[@mode]")
        self.hosts: set[tuple[str, str, int]] = set()
        self.denied: set[tuple[str, str, int]] = set()
        self.aliases: list[re.Pattern[str]] = []
        self._first: tuple[str, str, int] | None = None
        self._lock = threading.Lock()
        groups = config.element("storage.wopi.alias_groups")
        for group in groups.findall("group") if groups is not None else []:
            for host in group.findall("host"):
                origin = _origin(host.text or "")
                if origin is None:
                    continue
                allowed = (host.get("allow") or "true").lower() == "true"
                (self.hosts if allowed else self.denied).add(origin)
            for alias in group.findall("alias"):
                text = (alias.text or "").strip()
                if text:
                    try:
                        self.aliases.append(re.compile(text, re.IGNORECASE))
                    except re.error:
                        self.aliases.append(re.compile(re.escape(text), re.IGNORECASE))

    def allows(self, wopi_src: str) -> bool:
        origin = _origin(wopi_src)
        if origin is None or not self.enabled or origin in self.denied:
            return False
        if self.mode != "groups":
            with self._lock:
                if self._first is None:
                    self._first = origin
                return origin == self._first
        if origin in self.hosts:
            return True
        scheme, host, port = origin
        candidates = (f"{scheme}://{host}:{port}", f"{scheme}://{host}")
        return any(p.fullmatch(c) for p in self.aliases for c in candidates)


def _meminfo_bytes(field: str) -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _rss_bytes() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Server(ThreadingHTTPServer):
    """The HTTP(S) server plus what handlers need: config, WOPI policy, counters."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], config: Config) -> None:
        super().__init__(address, Handler)
        self.config = config
        self.policy = WopiPolicy(config)
        self.https = config.get_bool("ssl.enable")
        self.ssl_context: ssl.SSLContext | None = None
        self.connections = 0
        self.lock = threading.Lock()

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        """TLS handshake in the worker thread, so a slow or plain-TCP client cannot stall accept()."""
        if self.ssl_context is not None:
            try:
                request = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log(f"{client_address[0]} TLS handshake failed: {exc.__class__.__name__}")
                return
        super().finish_request(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """Routes of the stand-in; see README.md for the table."""

    server: Server
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return f"coolwsd-lab-standin/{version()}"

    def log_message(self, format: str, *args: object) -> None:
        """Suppress the stdlib access log, which would print query strings (WOPI access tokens)."""

    def _send(self, status: int, body: str | bytes, content_type: str = "text/plain; charset=utf-8",
              headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        path = urlsplit(self.path).path  # never the query: it may carry access tokens
        log(f"{self.client_address[0]} {self.command} {path} {status}")  # before the body: no lost lines
        if self.command != "HEAD":
            self.wfile.write(data)

    def _base_url(self) -> str:
        scheme = "https" if self.server.https or self.server.config.get_bool("ssl.termination") else "http"
        host = self.server.config.get("server_name") or self.headers.get("Host") or "localhost"
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):  # it ends up in XML attributes
            host = "localhost"
        return f"{scheme}://{host}"

    def _wopi_src(self, path: str, query: dict[str, list[str]]) -> str | None:
        if "WOPISrc" in query:
            return query["WOPISrc"][0]
        match = re.match(r"^/cool/([^/]+)(/|$)", path)
        if match and unquote(match.group(1)).startswith(("http://", "https://")):
            return unquote(match.group(1))
        return None

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        try:
            self._route()
        finally:
            with self.server.lock:
                self.server.connections -= 1

    def _route(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        wopi_src = self._wopi_src(path, query)
        if wopi_src is not None and not self.server.policy.allows(wopi_src):
            log(f"WOPISrc host {(_origin(wopi_src) or ('?', '?', 0))[1]} is in no alias group: refused")
            self._send(403, "Forbidden: WOPISrc host not allowed by storage.wopi.alias_groups\n")
            return
        if path == "/cool/getMetrics":
            self._metrics()
        elif path in ("/", "/hosting/discovery", "/hosting/capabilities") and is_broken():
            log(f"health request failed: {BROKEN_MESSAGE}")
            self._send(503 if path == "/" else 500, f"Service Unavailable: {BROKEN_MESSAGE}\n")
        elif path == "/":
            self._send(200, "OK")
        elif path == "/hosting/discovery":
            self._send(200, self._discovery(), "text/xml")
        elif path == "/hosting/capabilities":
            self._send(200, json.dumps(self._capabilities(), indent=1), "application/json")
        elif path.startswith(("/cool/", "/browser/")) and wopi_src is not None:
            self._send(200, f"{PRODUCT_NAME}: WOPISrc accepted (no editing session is ever opened)\n")
        elif path.startswith("/cool/"):
            self._send(400, "Bad Request: WOPISrc missing\n")
        else:
            self._send(404, "Not Found\n")

    def _discovery(self) -> str:
        base = f"{self._base_url()}/browser/{version_hash()}/cool.html?"
        apps = []
        for app, exts in DISCOVERY_APPS.items():
            actions = "".join(
                f'\n      <action default="true" ext="{ext}" name="edit" urlsrc="{base}"/>' for ext in exts
            )
            apps.append(f'    <app name="{app}">{actions}\n    </app>')
        capabilities = f"{self._base_url()}/hosting/capabilities"
        getinfo = f'<action name="getinfo" urlsrc="{capabilities}"/>'
        apps.append(f'    <app name="Capabilities">\n      {getinfo}\n    </app>')
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f"<!-- {PRODUCT_NAME} {version()} -->\n"
            "<wopi-discovery>\n"
            f'  <net-zone name="external-{"https" if base.startswith("https") else "http"}">\n'
            + "\n".join(apps)
            + "\n  </net-zone>\n</wopi-discovery>\n"
        )

    def _capabilities(self) -> dict[str, object]:
        return {
            "convert-to": {"available": False, "endpoint": "/cool/convert-to"},
            "hasMobileSupport": True,
            "hasProxyPrefix": False,
            "hasTemplateSaveAs": False,
            "hasTemplateSource": True,
            "hasWASMSupport": False,
            "hasZoteroSupport": False,
            "productName": PRODUCT_NAME,
            "productVersion": version(),
            "productVersionHash": version_hash(),
            "serverId": hashlib.sha1(f"{os.uname().nodename}:{version()}".encode()).hexdigest()[:8],
            "labStandIn": True,
        }

    def _authorized(self) -> bool:
        config = self.server.config
        if config.get_bool("security.enable_metrics_unauthenticated"):
            return True
        user, password = config.get("admin_console.username"), config.get("admin_console.password")
        header = self.headers.get("Authorization", "")
        if not (config.get_bool("admin_console.enable") and user and password):
            return False
        if not header.startswith("Basic "):
            return False
        try:
            given = base64.b64decode(header[6:].strip(), validate=True)
        except ValueError:
            return False
        expected = f"{user}:{password}".encode()
        return hmac.compare_digest(given, expected)

    def _metrics(self) -> None:
        if not self._authorized():
            self._send(401, "Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="online"'})
            return
        kits = 0 if is_broken() else 1
        used = _meminfo_bytes("MemTotal") - _meminfo_bytes("MemAvailable")
        lines = [
            f"# {PRODUCT_NAME} {version()}: real coolwsd metric names, stand-in values",
            "coolwsd_count 1",
            f"coolwsd_thread_count {threading.active_count()}",
            f"coolwsd_memory_used_bytes {_rss_bytes()}",
            "forkit_count 1",
            f"kit_count {kits}",
            f"kit_unassigned_count {kits}",
            "kit_assigned_count 0",
            "kit_segfault_count 0",
            "kit_lost_terminated_count 0",
            f"global_host_tcp_connections {self.server.connections}",
            f"global_memory_available_bytes {_meminfo_bytes('MemAvailable')}",
            f"global_memory_used_bytes {max(used, 0)}",
            "document_all_count 0",
            "document_active_count 0",
            "document_all_views_all_count_total 0",
            "document_active_views_active_count_total 0",
            "document_all_views_all_count_max 0",
            "error_storage_space_low 0",
            "error_storage_connection 0",
            "error_bad_request 0",
            "error_bad_argument 0",
            "error_unauthorized_request 0",
            "error_service_unavailable 0",
        ]
        self._send(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")


USAGE = (
    "usage: coolwsd [--config-file=PATH] [--port=N] [--o:KEY=VALUE ...] [--disable-ssl] [--version]\n"
    f"{PRODUCT_NAME}: a lab stand-in used only because Collabora Online's packages cannot be fetched here.\n"
)


def parse_args(argv: list[str]) -> tuple[str | None, int, dict[str, str]]:
    """Parse the real coolwsd option forms; returns (config file, port, overrides)."""
    config_file: str | None = DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None
    port = DEFAULT_PORT
    overrides: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("--config-file="):
            config_file = arg.split("=", 1)[1]
        elif arg.startswith("--port="):
            value = arg.split("=", 1)[1]
            if not value.isdigit() or not 0 < int(value) < 65536:
                sys.stderr.write(f"coolwsd: invalid --port {value!r}\n")
                raise SystemExit(64)
            port = int(value)
        elif arg.startswith("--o:") and "=" in arg:
            key, value = arg[4:].split("=", 1)
            overrides[key] = value
        elif arg == "--disable-ssl":
            overrides["ssl.enable"] = "false"
        elif arg == "--version":
            print(f"{PRODUCT_NAME} {version()} {version_hash()}")
            raise SystemExit(0)
        elif arg in ("-h", "--help"):
            sys.stdout.write(USAGE)
            raise SystemExit(0)
        else:
            sys.stderr.write(f"coolwsd: unknown option {arg.split('=', 1)[0]}\n{USAGE}")
            raise SystemExit(64)
    return config_file, port, overrides


def _on_sigterm(signum: int, frame: object) -> None:
    """systemctl stop: leave serve_forever() cleanly (exit status 0)."""
    raise SystemExit(0)


def main(argv: list[str]) -> int:
    config_file, port, overrides = parse_args(argv)
    try:
        config = Config.load(config_file, overrides)
    except (OSError, ET.ParseError) as exc:
        log(f"cannot read configuration {config_file}: {exc}")
        return 1
    listen = config.get("net.listen").strip().lower()
    address = {"any": "0.0.0.0", "loopback": "127.0.0.1"}.get(listen)
    if address is None:
        log(f"invalid net.listen {listen!r}: expected 'any' or 'loopback'")
        return 1
    try:
        server = Server((address, port), config)
    except OSError as exc:
        log(f"cannot listen on {address}:{port}: {exc}")
        return 1
    if server.https:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(config.get("ssl.cert_file_path"), config.get("ssl.key_file_path"))
        except (OSError, ssl.SSLError) as exc:
            log(f"cannot load ssl.cert_file_path/ssl.key_file_path: {exc}")
            return 1
        server.ssl_context = context
    signal.signal(signal.SIGTERM, _on_sigterm)
    scheme = "https" if server.https else "http"
    log(f"{PRODUCT_NAME} {version()} listening on {scheme}://{address}:{port}"
        f" (ssl.termination={config.get_bool('ssl.termination')}, wopi mode={server.policy.mode})")
    if is_broken():
        log(f"ERROR: {BROKEN_MESSAGE}")
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
