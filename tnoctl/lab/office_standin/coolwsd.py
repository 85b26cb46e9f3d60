#!/usr/bin/python3
"""tnoctl lab stand-in for coolwsd -- NOT Collabora Online.

Why this exists: Collabora Online's packages cannot be fetched in the tnoctl lab environment, yet
install, upgrade, rollback, health checks and monitoring of the office service must be exercised for
real. This small daemon (Python 3 standard library only, runs on Debian 12's python3) reproduces the
operational surface tnoctl relies on and nothing else: no document is ever rendered or edited.
It does open documents the way the real server starts to: a client (a browser, or tnoctl's
document-open probe) connects a WebSocket to ``/cool/<encoded WOPISrc>/ws`` and sends
``load url=<WOPISrc with access_token>``; the stand-in then calls the WOPI host itself (CheckFileInfo,
then GetFile), checks that it received the announced OpenDocument file, and answers ``status:`` (loaded)
or ``error: cmd=... kind=...``. WOPI hosts outside the configured alias groups are refused.

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
import io
import json
import os
import re
import signal
import ssl
import struct
import sys
import threading
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlsplit

PACKAGE_VERSION = "@PACKAGE_VERSION@"
"""The Debian package version (``24.04.11.1-1``), substituted at build time; left as is in the source tree."""
BROKEN_BUILD = "@BROKEN_BUILD@"
"""'health' (24.04.12.1): health endpoints and document loads fail; 'documents' (24.04.13.1): only
document loads fail (the kit does not start); '' otherwise."""
KIT_VERSION_FILE = "/usr/share/coolwsd-kit/kit-version"
"""Installed by the companion package coolwsd-kit: its package version, which must equal ours."""
WOPI_TIMEOUT = 10.0
MAX_DOCUMENT = 10 * 1024 * 1024
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B5E"

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


def package_version() -> str:
    """The Debian package version, or a marker when running unbuilt from the source tree."""
    return "0.0.0-source" if PACKAGE_VERSION.startswith("@") else PACKAGE_VERSION


def version() -> str:
    """The product version, as the real coolwsd reports it: the package version without its Debian revision."""
    return package_version().rsplit("-", 1)[0] if "-" in package_version() else package_version()


def is_broken() -> bool:
    """True in the build whose health endpoints fail."""
    return BROKEN_BUILD == "health"


def kit_failure() -> str:
    """Why no document can be opened now ('' when the kit is fine): broken build, or kit missing/out of step."""
    if BROKEN_BUILD in ("health", "documents"):
        return BROKEN_MESSAGE
    if PACKAGE_VERSION.startswith("@"):
        return ""  # unbuilt source tree (tests): no kit package to compare with
    try:  # the environment variable is for the stand-in's own tests only
        with open(os.environ.get("COOLWSD_KIT_VERSION_FILE", KIT_VERSION_FILE), encoding="ascii") as fh:
            kit = fh.read().strip()
    except OSError:
        return "kit not installed (package coolwsd-kit)"
    if kit != package_version():
        return f"kit version {kit} does not match coolwsd {package_version()}"
    return ""


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


def _wopi_get(url: str, limit: int) -> bytes:
    """GET from the WOPI host (no proxy, no redirects followed into other hosts); at most ``limit`` bytes."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"User-Agent": f"coolwsd-lab-standin/{version()}"})
    with opener.open(request, timeout=WOPI_TIMEOUT) as resp:
        data = resp.read(limit + 1)
    if len(data) > limit:
        raise ValueError("answer too large")
    return data


def odt_paragraphs(data: bytes) -> int | None:
    """Paragraph count of an OpenDocument text (mimetype + content.xml checked), None if it is not one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as odf:
            if odf.namelist()[:1] != ["mimetype"] or odf.read("mimetype").strip() != ODT_MIMETYPE:
                return None
            root = ET.fromstring(odf.read("content.xml"))
    except (zipfile.BadZipFile, KeyError, ET.ParseError, IndexError):
        return None
    return sum(1 for el in root.iter() if el.tag == "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}p")


def ws_read(stream) -> str | None:  # type: ignore[no-untyped-def]
    """One text message from a client (masked frames, no fragmentation); None on close or end of stream."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", stream.read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", stream.read(8))[0]
    if length > 1024 * 1024:
        raise ValueError("frame too large")
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(stream.read(length)))
    if opcode == 0x8:
        return None
    if opcode != 0x1:
        return ""
    return payload.decode("utf-8", "replace")


def ws_send(stream, text: str) -> None:  # type: ignore[no-untyped-def]
    """One unmasked text frame (server to client)."""
    data = text.encode()
    if len(data) < 126:
        head = bytes([0x81, len(data)])
    elif len(data) < 65536:
        head = bytes([0x81, 126]) + struct.pack("!H", len(data))
    else:
        head = bytes([0x81, 127]) + struct.pack("!Q", len(data))
    stream.write(head + data)
    stream.flush()


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
        elif re.fullmatch(r"/cool/[^/]+/ws", path) and wopi_src is not None and \
                self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket(wopi_src)
        elif path.startswith(("/cool/", "/browser/")) and wopi_src is not None:
            self._send(200, f"{PRODUCT_NAME}: WOPISrc accepted (no editing session is ever opened)\n")
        elif path.startswith("/cool/"):
            self._send(400, "Bad Request: WOPISrc missing\n")
        else:
            self._send(404, "Not Found\n")

    def _websocket(self, wopi_src: str) -> None:
        """The document session's WebSocket (RFC 6455): handshake, then :meth:`_session` over text frames."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        if self.headers.get("Upgrade", "").lower() != "websocket" or not key:
            self._send(400, "Bad Request: WebSocket upgrade expected\n")
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        log(f"{self.client_address[0]} GET {urlsplit(self.path).path.split('/')[1]}/.../ws 101")
        try:
            self._session(wopi_src)
        except (OSError, ValueError) as exc:
            log(f"document session ended: {exc.__class__.__name__}")

    def _session(self, wopi_src: str) -> None:
        """``coolclient`` → ``coolserver``; ``load url=...`` → WOPI calls → ``status:`` or ``error:``."""
        while True:
            message = ws_read(self.rfile)
            if message is None:
                return
            if message.startswith("coolclient "):
                hello = {"Version": version(), "Hash": version_hash(), "Protocol": "0.1", "Id": "1"}
                ws_send(self.wfile, "coolserver " + json.dumps(hello))
            elif message.startswith("load "):
                ws_send(self.wfile, self._load(wopi_src, message))
            else:
                ws_send(self.wfile, "error: cmd=" + (message.split(" ", 1)[0][:20] or "?") + " kind=unknown")

    def _load(self, wopi_src: str, message: str) -> str:
        """Open the document named by ``load url=``: the answer frame (``status:`` or ``error:``)."""
        args = dict(part.split("=", 1) for part in message.split()[1:] if "=" in part)
        url = unquote(args.get("url", ""))
        parts = urlsplit(url)
        file_url = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if not url or _origin(file_url) != _origin(wopi_src) or parts.path != urlsplit(wopi_src).path:
            return "error: cmd=load kind=docpathmismatch"
        if not self.server.policy.allows(file_url):
            log(f"load refused: WOPI host {_origin(file_url)[1]} is in no alias group")  # type: ignore[index]
            return "error: cmd=internal kind=unauthorized"
        failure = kit_failure()
        if failure:
            log(f"load failed: {failure}")
            return "error: cmd=load kind=faileddocloading"
        token = parse_qs(parts.query).get("access_token", [""])[0]
        suffix = "?access_token=" + quote(token, safe="")
        try:
            info = json.loads(_wopi_get(file_url + suffix, 64 * 1024))
            size = int(info["Size"])
            name = str(info["BaseFileName"])
            if not 0 < size <= MAX_DOCUMENT:
                raise ValueError("bad Size")
        except urllib.error.HTTPError as exc:
            log(f"CheckFileInfo failed: HTTP {exc.code}")
            return "error: cmd=storage kind=unauthorized" if exc.code in (401, 403) else \
                "error: cmd=storage kind=loadfailed"
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log(f"CheckFileInfo failed: {exc.__class__.__name__}")
            return "error: cmd=storage kind=loadfailed"
        try:
            data = _wopi_get(file_url + "/contents" + suffix, MAX_DOCUMENT)
        except (OSError, ValueError) as exc:
            log(f"GetFile failed: {exc.__class__.__name__}")
            return "error: cmd=storage kind=loadfailed"
        if len(data) != size:
            log(f"GetFile returned {len(data)} bytes, CheckFileInfo announced {size}")
            return "error: cmd=load kind=faileddocloading"
        paragraphs = odt_paragraphs(data)
        if paragraphs is None:
            log("GetFile did not return an OpenDocument text")
            return "error: cmd=load kind=faileddocloading"
        log(f"document loaded: {len(data)} bytes, {paragraphs} paragraph(s), extension {name.rsplit('.', 1)[-1][:8]}")
        return f"status: type=text parts=1 current=0 width=12240 height=15840 viewid=0 paragraphs={paragraphs}"

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
        kits = 0 if kit_failure() else 1
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
    if kit_failure():
        log(f"ERROR: {kit_failure()}")
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
