"""Document-open probe: open a small test document on a tenant's office server, end to end, as a browser would.

Why: users most often report office upgrades that break *opening documents* while discovery and
capabilities still answer. This probe plays both parts a real opening involves:

- the **WOPI host**: a one-shot WOPI endpoint (:class:`OneShotWopi`) on ``tno_office_probe_wopi_host``
  (an address of the probing machine that office hosts reach; any port, each probe its own ephemeral
  one) serving CheckFileInfo and GetFile for a small .odt, each once, behind a random access token;
- the **browser**: through the tenant's proxy name (``office.<domain>``, TLS verified), a WebSocket to
  ``/cool/<encoded WOPISrc>/ws`` (the real Collabora Online path), ``coolclient 0.1``, then
  ``load url=<encoded WOPISrc?access_token=...>``; the server must answer ``status:`` (loaded).

The probe passes only when the server answered ``status:`` AND the WOPI endpoint saw both
CheckFileInfo and GetFile with the right token: an office server cannot pass it without fetching the
document. ``error: cmd=... kind=...`` answers (refused WOPI host, storage or load failure) are reported
as they are. The access token and the document never appear in a result or a log.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import os
import secrets
import socket
import ssl
import struct
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from tnoctl.probes.base import ProbeResult, Stopwatch, short_error
from tnoctl.probes.tls import client_context

CHECK = "office_document"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B5E"
MAX_FRAME = 4 * 1024 * 1024
ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"
_CONTENT = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3">'
    "<office:body><office:text><text:p>tnoctl document-open probe</text:p></office:text></office:body>"
    "</office:document-content>\n"
)
_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
    '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    "</manifest:manifest>\n"
)


def make_odt() -> bytes:
    """A minimal, valid OpenDocument text (``mimetype`` first and stored, manifest, one paragraph)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as odt:
        stamp = (2025, 1, 1, 0, 0, 0)
        odt.writestr(zipfile.ZipInfo("mimetype", stamp), ODT_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        odt.writestr(zipfile.ZipInfo("META-INF/manifest.xml", stamp), _MANIFEST, compress_type=zipfile.ZIP_DEFLATED)
        odt.writestr(zipfile.ZipInfo("content.xml", stamp), _CONTENT, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@dataclass
class Served:
    """What the one-shot WOPI endpoint handed out (each at most once)."""

    check_file_info: bool = False
    get_file: bool = False
    refused: int = 0  # requests with a wrong token, path or a second call
    lock: threading.Lock = field(default_factory=threading.Lock)


class _WopiHandler(BaseHTTPRequestHandler):
    server: _WopiServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: request lines carry the access token."""

    def _answer(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        token = parse_qs(parts.query).get("access_token", [""])[0]
        srv, base = self.server, f"/wopi/files/{self.server.file_id}"
        authorized = hmac.compare_digest(token.encode(), srv.token.encode())
        with srv.served.lock:
            if authorized and parts.path == base and not srv.served.check_file_info:
                srv.served.check_file_info = True
                info = {"BaseFileName": srv.name, "Size": len(srv.document), "OwnerId": "tnoctl",
                        "UserId": "tnoctl-probe", "UserFriendlyName": "tnoctl probe", "Version": "1",
                        "UserCanWrite": False, "ReadOnly": True}
                body, kind = json.dumps(info).encode(), "application/json"
            elif authorized and parts.path == base + "/contents" and srv.served.check_file_info \
                    and not srv.served.get_file:
                srv.served.get_file = True
                body, kind = srv.document, "application/vnd.oasis.opendocument.text"
            else:
                srv.served.refused += 1
                body, kind = b"", ""
        if kind:
            self._answer(200, body, kind)
        else:
            self._answer(401 if not authorized else 404, b"{}")


class _WopiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str, document: bytes) -> None:
        super().__init__((address, 0), _WopiHandler)
        self.document = document
        self.file_id = secrets.token_hex(8)
        self.token = secrets.token_urlsafe(24)
        self.name = "tnoctl-probe.odt"
        self.served = Served()


class OneShotWopi:
    """A WOPI endpoint for one test document on ``http://<address>:<ephemeral port>``, for one probe.

    Use as a context manager; :attr:`wopi_src` is the file URL (no token), :attr:`token` its access token.
    """

    def __init__(self, address: str, document: bytes | None = None) -> None:
        self._server = _WopiServer(address, document if document is not None else make_odt())
        self._thread = threading.Thread(target=self._server.serve_forever, name="wopi-probe", daemon=True)

    @property
    def wopi_src(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/wopi/files/{self._server.file_id}"

    @property
    def token(self) -> str:
        return self._server.token

    @property
    def served(self) -> Served:
        return self._server.served

    def __enter__(self) -> OneShotWopi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def bind_address(wopi_host: str) -> str:
    """The IPv4 address to listen on for ``http://<address or name>`` (a name is resolved)."""
    host = urlsplit(wopi_host).hostname or ""
    return socket.gethostbyname(host)


class WebSocket:
    """A minimal RFC 6455 client over one TLS connection (text frames, client-side masking)."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buffer = b""

    @classmethod
    def connect(cls, address: str, port: int, server_name: str, path: str, ca_file: Path | None,
                timeout: float) -> WebSocket:
        """TLS to ``address:port`` verified for ``server_name``, then the HTTP Upgrade to a WebSocket."""
        raw = socket.create_connection((address, port), timeout=timeout)
        try:
            sock = client_context(ca_file).wrap_socket(raw, server_hostname=server_name)
        except (OSError, ssl.SSLError):
            raw.close()
            raise
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: https://{server_name}\r\n"
                   "User-Agent: tnoctl-probe\r\n\r\n")
        ws = cls(sock)
        try:
            sock.sendall(request.encode())
            head = ws._read_until(b"\r\n\r\n").decode("latin-1")
            status = head.split("\r\n", 1)[0]
            if " 101 " not in f"{status} ":
                raise ConnectionError(f"WebSocket upgrade refused: {status.strip()[:80]}")
            expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            headers = {k.strip().lower(): v.strip() for k, _, v in
                       (line.partition(":") for line in head.split("\r\n")[1:] if ":" in line)}
            if headers.get("sec-websocket-accept") != expected:
                raise ConnectionError("WebSocket upgrade without a valid Sec-WebSocket-Accept")
        except BaseException:
            sock.close()
            raise
        return ws

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed during the WebSocket upgrade")
            self.buffer += chunk
            if len(self.buffer) > 65536:
                raise ConnectionError("oversized WebSocket upgrade answer")
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _read_exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("WebSocket closed by the server")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def send(self, text: str) -> None:
        """One masked text frame."""
        data = text.encode()
        head = bytes([0x81])
        if len(data) < 126:
            head += bytes([0x80 | len(data)])
        elif len(data) < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", len(data))
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", len(data))
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def receive(self) -> str | None:
        """The next text message (binary frames, e.g. tiles, are skipped); None when the server closed."""
        while True:
            first, second = self._read_exact(2)
            length = second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read_exact(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read_exact(8))[0]
            if length > MAX_FRAME:
                raise ConnectionError("oversized WebSocket frame")
            mask = self._read_exact(4) if second & 0x80 else b""
            payload = self._read_exact(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = first & 0x0F
            if opcode == 0x8:
                return None
            if opcode == 0x1:
                return payload.decode("utf-8", "replace")

    def close(self) -> None:
        """A masked close frame (status 1000), then the connection."""
        mask = os.urandom(4)
        with contextlib.suppress(OSError):
            self.sock.sendall(bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"\x03\xe8")))
        self.sock.close()


def session_path(wopi_src: str) -> str:
    """``/cool/<encoded WOPISrc>/ws?WOPISrc=<encoded>&compat=/ws``, as Collabora Online's browser client opens it."""
    encoded = quote(wopi_src, safe="")
    return f"/cool/{encoded}/ws?WOPISrc={encoded}&compat=/ws"


def load_message(wopi_src: str, token: str) -> str:
    """The ``load`` command of the browser client: the document URL with its access token, URL-encoded."""
    return "load url=" + quote(f"{wopi_src}?access_token={quote(token, safe='')}", safe="") + " lang=en-US"


def verdict(answer: str | None, served: Served) -> tuple[bool, str]:
    """Pure: the probe's outcome from the server's answer to ``load`` and what the WOPI endpoint served."""
    if answer is None:
        return False, "the office server closed the session without answering the load"
    if answer.startswith("error:"):
        return False, f"the office server refused to open the document ({answer.strip()[:120]})"
    if not answer.startswith("status:"):
        return False, f"unexpected answer to load: {answer.strip()[:80]}"
    if not (served.check_file_info and served.get_file):
        return False, "the office server reported the document loaded without fetching it (CheckFileInfo/GetFile)"
    return True, "test document opened (CheckFileInfo, GetFile, status)"


def probe_document(tenant: str, address: str, port: int, server_name: str, ca_file: Path | None,
                   timeout: float, wopi_host: str) -> ProbeResult:
    """Open the test document through ``server_name`` (TLS to ``address:port``); see the module docstring."""
    watch = Stopwatch()
    try:
        with OneShotWopi(bind_address(wopi_host)) as wopi:
            ws = WebSocket.connect(address, port, server_name, session_path(wopi.wopi_src), ca_file, timeout)
            try:
                ws.sock.settimeout(timeout)
                ws.send("coolclient 0.1")
                ws.send(load_message(wopi.wopi_src, wopi.token))
                deadline = time.monotonic() + timeout
                answer: str | None = None
                while time.monotonic() < deadline:
                    message = ws.receive()
                    if message is None or message.startswith(("status:", "error:")):
                        answer = message
                        break
            finally:
                ws.close()
            ok, detail = verdict(answer, wopi.served)
    except (OSError, ssl.SSLError, ConnectionError, ValueError) as exc:
        return ProbeResult(tenant, "office", CHECK, False, watch(), short_error(exc))
    return ProbeResult(tenant, "office", CHECK, ok, watch(), detail)
