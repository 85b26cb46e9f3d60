"""A real Prometheus stack on loopback for end-to-end monitoring tests (helper of test_monitoring_prometheus).

Why a helper: the test starts long-running programs (Debian's prometheus, prometheus-alertmanager
and prometheus-blackbox-exporter, ``tnoctl exporter``) with temporary configuration, polls their
HTTP APIs with a deadline, runs a webhook receiver for Alertmanager's notifications, and must stop
exactly the processes it started (by PID). Everything here is plain subprocess + urllib +
http.server; nothing is shared with other tests. Everything listens on 127.0.0.1 only.

Name resolution: blackbox probes tenants by service name (``mail.<domain>``, ``office.<domain>``,
the production mode of ``tnoctl monitoring targets``) so that TLS verifies the names the lab
certificates carry. The lab has no DNS, so blackbox runs in a private mount namespace where a
temporary hosts file is bind-mounted over /etc/hosts (root only; the machine's file is untouched).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS = "/usr/bin/prometheus"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
PROMTOOL = "/usr/bin/promtool"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> str:
    """GET a URL, return the body as text (raises on HTTP errors)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def wait_for(what: str, check: Callable[[], Any], deadline_seconds: float, interval: float = 1.0) -> Any:
    """Call ``check`` until it returns a truthy value; AssertionError with the last value at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, ValueError) as exc:  # not listening yet, bad JSON while starting
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
        time.sleep(interval)


@dataclass
class Proc:
    """One program the test started: its Popen and log file; stopped by PID, never by name."""

    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s; reaps the child."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=15)

    def tail(self, chars: int = 2000) -> str:
        """The end of the program's log (for failure messages; these programs log no secrets)."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""


@dataclass
class Stack:
    """The processes of one test module, stopped in reverse order by :meth:`stop`."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        """Start ``argv`` with stdout+stderr to ``<workdir>/<name>.log``."""
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as fh:
            popen = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Stop every process started here (reverse order)."""
        for proc in reversed(self.procs):
            proc.stop()


def hosts_file(names: Iterable[tuple[str, str]]) -> str:
    """/etc/hosts text for (name, address) pairs, plus localhost."""
    lines = ["127.0.0.1\tlocalhost"]
    by_address: dict[str, list[str]] = {}
    for name, address in names:
        by_address.setdefault(address, [])
        if name not in by_address[address]:
            by_address[address].append(name)
    lines += [f"{address}\t{' '.join(n)}" for address, n in by_address.items()]
    return "\n".join(lines) + "\n"


def blackbox_argv(config: Path, hosts: Path, port: int) -> list[str]:
    """blackbox_exporter in a private mount namespace whose /etc/hosts is ``hosts`` (exec: same PID)."""
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, str(hosts),
            BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"]


def blackbox_config(shipped: Path, ca_file: Path) -> str:
    """The shipped modules file with only the CA path adapted."""
    doc = yaml.safe_load(shipped.read_text())
    for module in doc["modules"].values():
        for prober in ("tcp", "http"):
            tls = module.get(prober, {}).get("tls_config")
            if tls is not None and "ca_file" in tls:
                tls["ca_file"] = str(ca_file)
    return yaml.safe_dump(doc, sort_keys=False)


def fast_rules(shipped_text: str, for_: str = "2s") -> str:
    """Test-only copy of the alert rules with every ``for:`` shortened (the shipped file is untouched)."""
    text, count = re.subn(r"^(\s*)for: \S+\s*$", rf"\g<1>for: {for_}", shipped_text, flags=re.M)
    if count == 0:
        raise ValueError("no 'for:' found in the rules")
    return text


def prometheus_config(*, rules: Path, tnoctl: dict[str, str], blackbox: str, file_sd_dir: Path,
                      alertmanager: str | None = None, interval: str = "2s") -> dict:
    """Scrape config: tnoctl exporters (job name -> address), blackbox (multi-target), node and Dovecot exporters.

    The node and Dovecot targets come from ``tnoctl monitoring targets`` (``node.json``, ``dovecot.json``
    in ``file_sd_dir``, each target labelled with its ``host``), as in exporters/prometheus/prometheus.yml.
    """
    jobs: list[dict] = [{"job_name": job, "static_configs": [{"targets": [addr]}]} for job, addr in tnoctl.items()]
    jobs.append({
        "job_name": "blackbox",
        "metrics_path": "/probe",
        "file_sd_configs": [{"files": [str(file_sd_dir / "blackbox-*.json")], "refresh_interval": "5s"}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": blackbox},
        ],
    })
    for job in ("node", "dovecot"):
        jobs.append({"job_name": job, "file_sd_configs": [{"files": [str(file_sd_dir / f"{job}.json")]}]})
    config: dict = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": jobs,
    }
    if alertmanager:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return config


def prometheus_argv(config: Path, data: Path, port: int) -> list[str]:
    """Debian's prometheus on loopback with a temporary data directory."""
    return [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]


def fast_alertmanager(shipped: dict, *, group_wait: str = "10s", group_interval: str = "1m") -> dict:
    """Test-only timings on the generated Alertmanager configuration (routing and inhibition untouched)."""
    doc = json.loads(json.dumps(shipped))
    doc["route"].update(group_wait=group_wait, group_interval=group_interval, repeat_interval="1h")
    return doc


def alertmanager_argv(config: Path, data: Path, port: int) -> list[str]:
    """Debian's Alertmanager on loopback, clustering off (it would otherwise listen on every address)."""
    return [ALERTMANAGER, f"--config.file={config}", f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]


@dataclass
class Notification:
    """One webhook delivery from Alertmanager, with the time it arrived."""

    received_at: float
    body: dict

    def firing(self, name: str | None = None) -> list[dict[str, str]]:
        """Labels of the firing alerts in it (optionally only ``name``)."""
        return [a["labels"] for a in self.body.get("alerts", []) if a.get("status") == "firing"
                and (name is None or a["labels"].get("alertname") == name)]


class WebhookReceiver:
    """An Alertmanager webhook receiver on 127.0.0.1 that keeps every notification it is sent."""

    def __init__(self) -> None:
        self.notifications: list[Notification] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.notifications.append(Notification(time.monotonic(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:  # keep the test output clean
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)
        self._thread.start()

    def since(self, t0: float) -> list[Notification]:
        """Notifications received after ``t0`` (time.monotonic)."""
        with self._lock:
            return [n for n in self.notifications if n.received_at >= t0]

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


@dataclass
class PromAPI:
    """The bits of Prometheus' HTTP API the tests use."""

    base: str

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        doc = json.loads(http_get(url))
        if doc.get("status") != "success":
            raise ValueError(f"{path}: {doc}")
        return doc["data"]

    def ready(self) -> bool:
        """True once Prometheus answers /-/ready."""
        return "Ready" in http_get(f"{self.base}/-/ready")

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """Instant vector query: [(labels, value)]."""
        data = self._get("/api/v1/query", query=expr)
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def alerts(self, name: str | None = None, state: str = "firing") -> list[dict[str, str]]:
        """Labels of the alerts in ``state`` (optionally only ``name``)."""
        out = []
        for alert in self._get("/api/v1/alerts")["alerts"]:
            if alert["state"] == state and (name is None or alert["labels"].get("alertname") == name):
                out.append(alert["labels"])
        return out
