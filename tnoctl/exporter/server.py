"""The exporter's HTTP side: a WSGI app (``/metrics`` and a landing page) on a threading server.

Why not ``start_http_server``: we need basic auth from the web config, and TLS on the same
socket. prometheus_client's ``make_wsgi_app`` still does the exposition (content negotiation,
OpenMetrics, gzip); this module wraps it with auth and serves it.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from tnoctl.exporter.webconfig import WebConfig

LANDING = (b"<html><head><title>tnoctl exporter</title></head><body><h1>tnoctl exporter</h1>"
           b"<p><a href=\"/metrics\">Metrics</a></p></body></html>")


class _QuietHandler(WSGIRequestHandler):
    """No per-request log lines on stderr (Prometheus scrapes every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:
        return


def fast_metrics_app(render: Callable[[], str],
                     render_gzip: Callable[[], bytes] | None = None) -> Callable[..., Iterable[bytes]]:
    """``/metrics`` from a pre-rendered text exposition (gzip level 1 when the client accepts it).

    ``render_gzip`` gives the exposition already compressed (the collector's cached gzip members),
    so a gzip scrape does not recompress what did not change.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = [("Content-Type", CONTENT_TYPE_LATEST)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = render_gzip() if render_gzip is not None else gzip.compress(render().encode(), compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        else:
            body = render().encode()
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [body]

    return app


def make_app(registry: CollectorRegistry, web: WebConfig | None = None,
             render: Callable[[], str] | None = None,
             render_gzip: Callable[[], bytes] | None = None) -> Callable[..., Iterable[bytes]]:
    """WSGI app: basic auth (if configured), ``/metrics``, a landing page.

    With ``render`` (the tnoctl collector's cached fast path) ``/metrics`` serves its text;
    otherwise prometheus_client's own WSGI app does the exposition.
    """
    metrics = fast_metrics_app(render, render_gzip) if render is not None else make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if web is not None and not web.authorized(environ.get("HTTP_AUTHORIZATION")):
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="tnoctl"'),
                                                ("Content-Type", "text/plain")])
            return [b"Unauthorized\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [LANDING]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found\n"]

    return app


def parse_listen(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9520`` / ``[::1]:9520`` → (host, port); ValueError if malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address must be HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


class ExporterServer:
    """A started HTTP(S) server in a daemon thread; :attr:`port` is the bound port (0 → random)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int, web: WebConfig | None = None,
                 render: Callable[[], str] | None = None, render_gzip: Callable[[], bytes] | None = None) -> None:
        self.httpd = make_server(host, port, make_app(registry, web, render, render_gzip), ThreadingWSGIServer,
                                 handler_class=_QuietHandler)
        if web is not None and web.tls:
            # handshake in the handler thread, not in accept(): a slow client cannot block the others
            self.httpd.socket = web.ssl_context().wrap_socket(self.httpd.socket, server_side=True,
                                                              do_handshake_on_connect=False)
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="tnoctl-exporter-http", daemon=True)

    def start(self) -> ExporterServer:
        """Serve in the background."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
