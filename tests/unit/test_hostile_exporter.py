"""Exporter hardening (#13): client certificates enforced or refused, no unauthenticated remote
listening by accident, SIGTERM handled from the moment "serving" is printed."""

from __future__ import annotations

import io
import signal
import ssl
import urllib.error
from pathlib import Path

import pytest

from tests.unit.test_exporter import KNOWN, _get, _make_pki, fill
from tnoctl import paths
from tnoctl.cli import main
from tnoctl.cli.context import AppContext
from tnoctl.errors import InvalidInput
from tnoctl.exporter import app as exporter_app
from tnoctl.exporter.server import ExporterServer
from tnoctl.exporter.webconfig import load_web_config


def _tls_config(tmp_path: Path, extra: str) -> Path:
    pki = _make_pki(tmp_path)
    cfg = tmp_path / "web.yml"
    cfg.write_text(f"tls_server_config:\n  cert_file: {pki['cert']}\n  key_file: {pki['key']}\n{extra}")
    return cfg


@pytest.mark.parametrize("extra,needle", [
    ("  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
    ("  client_auth_type: RequireAnyClientCert\n", "is not supported"),
    ("  client_auth_type: RequestClientCert\n", "is not supported"),
    ("  client_auth_type: Whatever\n", "one of NoClientCert"),
])
def test_a_client_auth_setting_that_cannot_be_honoured_is_refused(tmp_path: Path, extra: str, needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        load_web_config(_tls_config(tmp_path, extra))
    assert any("client_auth_type" in d and needle in d for d in err.value.details), err.value.details


def test_require_and_verify_client_cert_refuses_clients_without_one(tmp_path: Path) -> None:
    pki = _make_pki(tmp_path)
    web = load_web_config(_tls_config(tmp_path, f"  client_ca_file: {pki['ca']}\n"
                                                "  client_auth_type: RequireAndVerifyClientCert\n"))
    assert web.authenticates
    fill(tmp_path / "state")
    exp = exporter_app.build(tmp_path / "state", lambda: KNOWN)
    server = ExporterServer(exp.registry, "127.0.0.1", 0, web, exp.collector.render).start()
    url = f"https://127.0.0.1:{server.port}/metrics"
    try:
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        ctx.check_hostname = False
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            _get(url, ctx)  # no client certificate
        ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
        status, body = _get(url, ctx)
        assert status == 200 and b"tnoctl_up" in body
    finally:
        server.stop()


class _FailOnServing(io.StringIO):
    """stderr that turns "serving" into an error (the exporter must have refused before that)."""

    def write(self, text: str) -> int:
        if "serving" in text:
            raise AssertionError(f"the exporter started serving: {text.strip()}")
        return super().write(text)


def _run(tmp_path: Path, *argv: str) -> tuple[int, str]:
    err = _FailOnServing()
    app = AppContext(inventory=paths.LAB_INVENTORY, state_dir_override=tmp_path, stdout=io.StringIO(), stderr=err)
    rc = main(["--state-dir", str(tmp_path), "exporter", "--no-probes", *argv], app=app)
    return rc, err.getvalue()


@pytest.mark.parametrize("listen", [":0", "0.0.0.0:0", "[::]:0", "198.18.0.1:0"])
def test_remote_listen_without_auth_needs_an_explicit_flag(tmp_path: Path, listen: str) -> None:
    rc, err = _run(tmp_path, "--listen", listen)
    assert rc == 2
    assert f"--listen {listen} serves every network without authentication" in err
    assert "--allow-unauthenticated-remote" in err


class _StopOnServing(io.StringIO):
    """stderr that, when "serving" is printed, checks our SIGTERM handler is in place, then sends SIGTERM."""

    handler_at_serving: object = None

    def write(self, text: str) -> int:
        if "serving" in text:
            self.handler_at_serving = signal.getsignal(signal.SIGTERM)
            if not callable(self.handler_at_serving):
                raise AssertionError("'serving' printed before the SIGTERM handler was installed")
            signal.raise_signal(signal.SIGTERM)
        return super().write(text)


@pytest.mark.parametrize("extra", [[], ["--allow-unauthenticated-remote", "--listen", "0.0.0.0:0"]])
def test_serving_is_printed_only_once_sigterm_is_handled(tmp_path: Path, extra: list[str]) -> None:
    """The race behind the flaky test_exporter_verb_serves_and_stops_on_sigterm, made deterministic."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    err = _StopOnServing()
    app = AppContext(inventory=paths.LAB_INVENTORY, state_dir_override=tmp_path, stdout=io.StringIO(), stderr=err)
    try:
        rc = main(["--state-dir", str(tmp_path), "exporter", "--no-probes", "--listen", "127.0.0.1:0", *extra],
                  app=app)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert rc == 0, err.getvalue()
    assert callable(err.handler_at_serving)


def test_web_config_duplicate_keys_are_refused(tmp_path: Path) -> None:
    """`basic_auth_users` twice: the second (empty) one must not silently disable auth."""
    cfg = tmp_path / "web.yml"
    cfg.write_text("basic_auth_users: {prometheus: '$2b$04$abcdefghijklmnopqrstuu'}\nbasic_auth_users: {}\n")
    with pytest.raises(InvalidInput, match="duplicate key 'basic_auth_users'"):
        load_web_config(cfg)
