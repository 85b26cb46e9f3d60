#!/usr/bin/python3
"""Rspamd's own counters for node_exporter's textfile collector (installed on mail hosts by role tno_monitoring).

Why a textfile and not a scrape job: Rspamd's controller (web UI + HTTP API) stays bound to
127.0.0.1:11334 (role tno_mail, worker-controller.inc); opening it to Prometheus would expose the web
UI and its write commands. A timer on the mail host GETs ``http://127.0.0.1:11334/metrics`` (Rspamd's
OpenMetrics export) over the loopback and writes the counters into node_exporter's textfile
directory, which Prometheus already scrapes (job ``node``). tno_mail empties Rspamd's ``secure_ip``
(the loopback would otherwise skip the password), so ``--password-file`` names the root-only copy of
the host's controller password tno_mail writes; its content goes in the ``Password:`` header (it is
never printed). A wrong or missing password answers 403: tno_rspamd_up 0.

Only a fixed set of families is kept, under the names Rspamd exports, so label cardinality stays
bounded and nothing collides with node_exporter's own metrics: the counters ``rspamd_scanned_total``,
``rspamd_spam_total``, ``rspamd_ham_total``, ``rspamd_learned_total`` and ``rspamd_actions_total``
(label ``type``: one of Rspamd's six actions), the gauges ``rspamd_connections`` and
``rspamd_scan_time_average``. Rspamd's ``process_start_time_seconds`` would clash with node_exporter's
own series of that name: it becomes ``rspamd_process_start_time_seconds``. Dropped: build and config
ids, memory pools, Bayes statfiles and fuzzy storages (labels that vary per version or per site).
Rspamd's counters carry no mailbox name or address. Added: ``tno_rspamd_up`` (1 when the controller
answered) and ``tno_rspamd_last_run_timestamp_seconds``. When the controller does not answer, the file
says ``tno_rspamd_up 0`` (no stale counters) and the run exits 1 (the unit fails: TnoSystemdUnitFailed).

The outbound rate limit (tno_mail's ratelimit.conf) answers with Rspamd's ``soft reject`` action, so
``rspamd_actions_total{type="soft reject"}`` counts rate-limited messages (TnoMailOutboundRateLimited);
``rspamd_actions_total{type="reject"}`` counts spam, DMARC p=reject and From-alignment rejections
(TnoMailRejectRateJump). The file is replaced atomically (temp file + rename).

Usage: tno-rspamd-metrics --url http://127.0.0.1:11334/metrics --out DIR/tno_rspamd.prom
       [--password-file /etc/tno/rspamd-controller.password]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.error
import urllib.request

ACTIONS = ("reject", "soft reject", "rewrite subject", "add header", "greylist", "no action")
"""Rspamd's actions (rspamd_action_to_str): the only values label ``type`` may take."""
KEPT: dict[str, tuple[str, str, str]] = {
    # Rspamd name: (name written, type, help)
    "rspamd_scanned_total": ("rspamd_scanned_total", "counter", "Messages scanned by Rspamd."),
    "rspamd_spam_total": ("rspamd_spam_total", "counter", "Messages Rspamd classified as spam."),
    "rspamd_ham_total": ("rspamd_ham_total", "counter", "Messages Rspamd classified as ham."),
    "rspamd_learned_total": ("rspamd_learned_total", "counter", "Messages learned by Rspamd."),
    "rspamd_actions_total": ("rspamd_actions_total", "counter", "Rspamd's results by action (label type)."),
    "rspamd_connections": ("rspamd_connections", "gauge", "Rspamd's active connections."),
    "rspamd_scan_time_average": ("rspamd_scan_time_average", "gauge", "Rspamd's average scan time."),
    "process_start_time_seconds": ("rspamd_process_start_time_seconds", "gauge",
                                   "Start time of Rspamd's main process (Unix time)."),
}
_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+\S+)?$")
_TYPE_LABEL_RE = re.compile(r'^\{type="([^"\\]*)"\}$')
MAX_BYTES = 1 << 20
"""A /metrics answer is a few KiB; more is not Rspamd's export."""


def parse(text: str) -> dict[str, dict[str, float]]:
    """Kept samples of an OpenMetrics text: {written name: {label set text: value}}.

    Unknown families, comments, malformed lines and ``rspamd_actions_total`` samples whose ``type`` is
    not one of Rspamd's actions are skipped, so the output's label sets are bounded whatever comes in.
    """
    out: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE_RE.match(line)
        if not match or match.group(1) not in KEPT:
            continue
        name, labels, raw = match.group(1), match.group(2) or "", match.group(3)
        try:
            value = float(raw)
        except ValueError:
            continue
        if name == "rspamd_actions_total":
            action = _TYPE_LABEL_RE.match(labels)
            if not action or action.group(1) not in ACTIONS:
                continue
            labels = f'{{type="{action.group(1)}"}}'
        elif labels:
            continue  # the kept families have no labels in Rspamd's export
        out.setdefault(KEPT[name][0], {})[labels] = value
    return out


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def render(samples: dict[str, dict[str, float]] | None, now: float) -> str:
    """Text exposition format; ``samples`` None means the controller did not answer (tno_rspamd_up 0)."""
    lines: list[str] = []
    for rspamd_name, (name, kind, doc) in KEPT.items():
        del rspamd_name
        series = (samples or {}).get(name)
        if not series:
            continue
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} {kind}"]
        lines += [f"{name}{labels} {_number(value)}" for labels, value in sorted(series.items())]
    lines += ["# HELP tno_rspamd_up 1 when Rspamd's controller answered on the loopback.",
              "# TYPE tno_rspamd_up gauge", f"tno_rspamd_up {0 if samples is None else 1}",
              "# HELP tno_rspamd_last_run_timestamp_seconds When Rspamd's counters were last read.",
              "# TYPE tno_rspamd_last_run_timestamp_seconds gauge",
              f"tno_rspamd_last_run_timestamp_seconds {now}"]
    return "\n".join(lines) + "\n"


def fetch(url: str, password: str | None, timeout: float = 10.0) -> str:
    """The body of GET ``url`` (OSError or ValueError when it fails; the password is never in a message)."""
    request = urllib.request.Request(url, headers={"Password": password} if password else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # main() allows loopback http URLs only
        body = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ValueError(f"answer over {MAX_BYTES} bytes")
    return body.decode("utf-8", errors="replace")


def _write(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """Read Rspamd's /metrics, write the kept families; exit 1 (and tno_rspamd_up 0) when it fails."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:11334/metrics", help="Rspamd controller's /metrics")
    ap.add_argument("--out", required=True, help=".prom file to write (in the textfile directory)")
    ap.add_argument("--password-file", help="root-only file holding the controller password (optional)")
    args = ap.parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1:", "http://[::1]:", "http://localhost:")):
        print(f"--url must be Rspamd's controller on the loopback, not {args.url!r}", file=sys.stderr)
        return 2
    password = None
    if args.password_file and os.path.exists(args.password_file):
        with open(args.password_file, encoding="utf-8") as fh:
            password = fh.read().strip() or None
    try:
        samples: dict[str, dict[str, float]] | None = parse(fetch(args.url, password))
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"Rspamd controller {args.url} did not answer: {str(reason)[:200]}", file=sys.stderr)
        samples = None
    if samples is not None and "rspamd_scanned_total" not in samples:
        print(f"{args.url}: no rspamd_scanned_total in the answer (not Rspamd's /metrics?)", file=sys.stderr)
        samples = None
    _write(args.out, render(samples, time.time()))
    return 0 if samples is not None else 1


if __name__ == "__main__":
    sys.exit(main())
