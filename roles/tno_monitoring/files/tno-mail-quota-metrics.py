#!/usr/bin/python3
"""Mailbox quota usage per tenant, for node_exporter's textfile collector (installed by role tno_monitoring).

Why: Dovecot's OpenMetrics listener exports event counters (logins, commands, deliveries), no quota
usage. This runs `doveadm -f tab quota get -A` (every mailbox of the host), maps each mailbox's
domain to its tenant (a "domain<TAB>tenant" file the role renders from tno_tenants) and writes
per-tenant aggregates only: labels never carry a mailbox name (DESIGN point 11). The fullest
mailbox's ratio is enough to alert; the runbook lists the mailboxes themselves over SSH.

Metrics (gauges): tno_mail_quota_used_bytes, tno_mail_quota_limit_bytes (sum over the tenant's
mailboxes that have a limit), tno_mail_quota_mailbox_max_usage_ratio, tno_mail_quota_mailboxes,
tno_mail_quota_last_run_timestamp_seconds. The file is replaced atomically (temp file + rename).

Usage: tno-mail-quota-metrics --map /etc/tno/mail-quota-tenants --out DIR/tno_mail_quota.prom
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass

DOVEADM = ["doveadm", "-f", "tab", "quota", "get", "-A"]


@dataclass
class Usage:
    """Aggregated STORAGE quota of one tenant's mailboxes."""

    mailboxes: int = 0
    used_bytes: int = 0
    limit_bytes: int = 0
    max_ratio: float = 0.0


def parse_map(text: str) -> dict[str, str]:
    """``domain<TAB>tenant`` lines -> {domain: tenant} (blank lines and # comments skipped)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            domain, _, tenant = line.partition("\t")
            if tenant:
                out[domain.strip().lower()] = tenant.strip()
    return out


def aggregate(doveadm_tab: str, tenants: dict[str, str]) -> dict[str, Usage]:
    """Per-tenant usage from `doveadm -f tab quota get -A` (STORAGE rows; values in KiB, limit '-' = none)."""
    usage = {tenant: Usage() for tenant in sorted(set(tenants.values()))}
    for line in doveadm_tab.splitlines():
        cols = line.split("\t")
        if len(cols) < 5 or cols[2].strip().upper() != "STORAGE":
            continue  # header, MESSAGE rows, blank lines
        user, value, limit = cols[0].strip(), cols[3].strip(), cols[4].strip()
        tenant = tenants.get(user.rpartition("@")[2].lower())
        if tenant is None or not value.isdigit():
            continue
        u = usage[tenant]
        u.mailboxes += 1
        u.used_bytes += int(value) * 1024
        if limit.isdigit() and int(limit) > 0:
            u.limit_bytes += int(limit) * 1024
            u.max_ratio = max(u.max_ratio, int(value) / int(limit))
    return usage


def render(usage: dict[str, Usage], now: float) -> str:
    """Text exposition format."""
    fams = [
        ("tno_mail_quota_used_bytes", "Bytes used by the tenant's mailboxes (Dovecot quota).", "used_bytes"),
        ("tno_mail_quota_limit_bytes", "Sum of the quota limits of the tenant's mailboxes.", "limit_bytes"),
        ("tno_mail_quota_mailbox_max_usage_ratio", "Usage/limit of the tenant's fullest mailbox.", "max_ratio"),
        ("tno_mail_quota_mailboxes", "Mailboxes of the tenant on this host.", "mailboxes"),
    ]
    lines: list[str] = []
    for name, doc, attr in fams:
        lines += [f"# HELP {name} {doc}", f"# TYPE {name} gauge"]
        lines += [f'{name}{{tenant="{t}"}} {getattr(u, attr)}' for t, u in usage.items()]
    lines += ["# HELP tno_mail_quota_last_run_timestamp_seconds When the quota usage was last read.",
              "# TYPE tno_mail_quota_last_run_timestamp_seconds gauge",
              f"tno_mail_quota_last_run_timestamp_seconds {now}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Read the map, run doveadm, write the .prom file atomically; exit 1 when doveadm fails."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--map", required=True, help="domain<TAB>tenant file")
    ap.add_argument("--out", required=True, help=".prom file to write (in the textfile directory)")
    args = ap.parse_args(argv)
    with open(args.map, encoding="utf-8") as fh:
        tenants = parse_map(fh.read())
    res = subprocess.run(DOVEADM, capture_output=True, text=True, check=False, timeout=300)
    if res.returncode != 0:
        print(f"doveadm quota get -A failed ({res.returncode}): {res.stderr.strip()[:300]}", file=sys.stderr)
        return 1
    text = render(aggregate(res.stdout, tenants), time.time())
    tmp = f"{args.out}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
