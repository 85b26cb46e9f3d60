"""HTTPS to a lab host's address while TLS (SNI + certificate verification) uses a tenant's service name.

The controller resolves no tenant name; the tests connect to the inventory address and present the
service name, exactly as a client that resolved it through the platform's DNS would.
"""

from __future__ import annotations

import http.client
import socket
import ssl


class PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPSConnection to ``address`` whose TLS server name (SNI, hostname check) is ``server_name``."""

    def __init__(self, address: str, server_name: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(server_name, 443, context=context, timeout=timeout)
        self._address = address
        self._context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
