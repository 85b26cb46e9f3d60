"""Disaster recovery of a whole tenant onto a mail host (``restore --to-host H``), inside restore's operation.

Steps, in order (a failed step stops the recovery, naming it; nothing after it runs):

1. ``placement``  ``tenants/<slug>.yml``: ``placement.mail`` rewritten to H (text edit keeping comments);
2. ``reach``      when the tenant moves off another host: does the old host answer over SSH? (a dead
                  host is left out of the deploy, and the operator is told to redeploy it before it
                  comes back, or it would still accept the tenant's domains locally);
3. ``deploy``     certificates first (in the lab: the host certificates re-issued for the new
                  placement, as `deploy` does), then ``backup.yml`` on H, the backup host and the old host
                  when it answers (H's key authorized, its borgmatic configuration of the tenant), then
                  ``site.yml`` on H and on the old host when it answers (it stops accepting the tenant's
                  domains in the same run) *while* H extracts the archive (``tno-backup fetch-tenant``:
                  the extract needs only the backup configuration, and it is most of a large tenant's
                  recovery time) (plan.backup.disaster_phases);
4. ``restore``    the host agent restores every mailbox from the fetched tree, the DKIM keys and Sieve
                  scripts on H, checks the userdb and the archive's manifest; Rspamd restarted (DKIM signer);
5. ``dns``        when the platform names a DNS server: the tenant's records published and checked
                  (as `dns publish`): the A records of ``mail./smtp./imap./autoconfig./mta-sts.<domain>`` carry
                  H's address. Without a DNS server, the records to change are printed as a warning.
                  From here the tenant is served on H: the seconds since the restore began are its
                  recovery time (``serving_after_seconds`` in the audit record and ``--json``);
6. ``follow``     ``site.yml`` on the other mail hosts (their postscreen allowlist must name H's address;
                  mail reaches H by the tenant's MX: plan.backup.disaster_hosts), off the critical path.
                  A failure here fails the restore, naming the hosts to redeploy; the tenant stays served.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from concurrent.futures import Future
from pathlib import Path

from tnoctl.actions.backup import TenantResult, last_json
from tnoctl.actions.backup_setup import play
from tnoctl.actions.deploy import refresh_lab_certificates
from tnoctl.actions.env import Env
from tnoctl.actions.tenant_dns_sync import ClientFactory
from tnoctl.backup import naming
from tnoctl.errors import InvalidInput, OperationFailed
from tnoctl.plan.backup import BackupTarget, disaster_hosts, disaster_phases
from tnoctl.plan.calls import PlaybookCall
from tnoctl.state import store as state_store
from tnoctl.state.audit import Operation

_PLACEMENT_BLOCK = re.compile(r"^(placement:\s*\n(?:[ \t]+.*\n)*?[ \t]+mail:[ \t]*)([A-Za-z0-9._-]+)", re.M)
_PLACEMENT_FLOW = re.compile(r"^(placement:\s*\{[^}\n]*\bmail:\s*)([A-Za-z0-9._-]+)", re.M)
REACH_TIMEOUT = 20
FETCH_TIMEOUT = 12 * 3600


def disaster(env: Env, op: Operation, target: BackupTarget, to_host: str, archive: str,
             dns_client: ClientFactory | None = None, started: float | None = None) -> TenantResult:
    """Placement -> reach -> deploy (certificates, backup.yml, site.yml beside the fetch) -> restore -> DNS -> follow.

    ``dns_client`` builds the DNS client (default: the platform's server with its TSIG key; tests fake it).
    ``started``: ``time.monotonic()`` when the restore began (its recovery time counts from there).
    """
    started = time.monotonic() if started is None else started
    old = move_placement(env.inventory_path, target.slug, to_host)
    env.reload_inventory()  # the new placement: certificates, DNS records and probes read it
    op.details["placement"] = {"mail": {"from": old, "to": to_host}}
    env.output.info(f"{target.slug}: placement.mail {old} -> {to_host} (tenants/{target.slug}.yml)")
    reachable = old not in ("", to_host) and answers(env, old)
    if old not in ("", to_host) and not reachable:
        env.output.warn(f"{old} does not answer: left out of the deploy; before it comes back, redeploy it "
                        f"(tnoctl deploy --host {old}) so that it stops accepting {target.slug}'s domains")
    mail_hosts = sorted(n for n, h in env.inventory.hosts.items() if "mail" in h.groups)
    site_hosts = disaster_hosts(to_host, old or None, mail_hosts, reachable)
    op.details["deployed"] = list(site_hosts)
    refresh_lab_certificates(env)
    phases = disaster_phases(to_host, target.backup_host, site_hosts, old or None)
    new_target = dataclasses.replace(target, mail_host=to_host)
    failed = _play_all(env, op, [phases.keys], 0)
    if failed:
        return TenantResult(target.slug, False, failed)
    failed, fetched = _serve_while_fetching(env, op, phases.serve, new_target, archive)
    if failed or fetched:
        return TenantResult(target.slug, False, failed or fetched)
    result = restore_tenant(env, new_target, archive)
    if not result.ok:
        return result
    dns = publish_dns(env, op, target.slug, dns_client)
    if dns:
        return dataclasses.replace(result, ok=False, detail=f"{result.detail}; DNS: {'; '.join(dns)}"[:500])
    op.details["serving_after_seconds"] = round(time.monotonic() - started, 3)
    env.output.info(f"{target.slug}: served on {to_host} after {op.details['serving_after_seconds']:.1f}s; "
                    "the other mail hosts follow")
    failed = _play_all(env, op, list(phases.follow), 2)
    if failed:
        hosts = " ".join(f"--host {h}" for call in phases.follow for h in call.limit)
        return dataclasses.replace(result, ok=False, detail=f"{result.detail}; served on {to_host}, but {failed} "
                                                            f"(then: tnoctl deploy {hosts})"[:500])
    return result


def _serve_while_fetching(env: Env, op: Operation, serve: PlaybookCall, target: BackupTarget,
                          archive: str) -> tuple[str, str]:
    """``serve`` (site.yml) while the new host extracts the archive (``tno-backup fetch-tenant``).

    Why: for a tenant of any size the extract is most of the recovery time, and it needs only the
    backup configuration ``keys`` wrote, not the deploy. Returns (what failed in the deploy, what failed
    in the fetch): "" each when it went well. The fetch runs in a daemon thread on its own SSH channel
    (the SSH factory is thread-safe); the deploy is awaited first, then the fetch. An interrupted
    restore leaves at most an extracted tree, replaced by the next fetch or removed by the restore.
    """
    outcome: Future[tuple[dict | None, bool, str]] = Future()

    def fetch() -> None:
        try:
            outcome.set_result(run_agent(env, target.mail_host or "", ["fetch-tenant", target.slug, archive],
                                         FETCH_TIMEOUT))
        except BaseException as exc:  # handed to the waiting thread, re-raised there
            outcome.set_exception(exc)

    # A daemon thread, not a ThreadPoolExecutor: the executor's threads are joined at interpreter exit, so
    # an operator's Ctrl-C during the deploy would then wait for a fetch of up to FETCH_TIMEOUT.
    threading.Thread(target=fetch, name=f"fetch-{target.slug}", daemon=True).start()
    failed = _play_all(env, op, [serve], 1)
    data, ran, error = outcome.result()
    if data is not None and ran:
        op.details["fetch_seconds"] = data.get("seconds")
        return failed, ""
    return failed, f"fetch of {archive} on {target.mail_host} failed: {error or 'no result'}"[:500]


def _play_all(env: Env, op: Operation, calls: list[PlaybookCall], first_index: int) -> str:
    """Run ``calls`` in order through the operation; "" or what failed (the first failing call stops it)."""
    for index, call in enumerate(calls, start=first_index):
        failures = play(env, op, call, suffix=str(index), hosts=list(call.limit), title=f"restore: {call.playbook}")
        if failures:
            return f"{call.playbook} failed on {', '.join(call.limit)}: {'; '.join(failures)}"[:500]
    return ""


def answers(env: Env, host: str) -> bool:
    """True when ``host`` runs a command over SSH within REACH_TIMEOUT seconds."""
    try:
        return env.ssh.run(host, ["true"], timeout=REACH_TIMEOUT).ok
    except OperationFailed:
        return False


def publish_dns(env: Env, op: Operation, slug: str, dns_client: ClientFactory | None = None) -> list[str]:
    """Publish and check the tenant's records on the platform DNS server; the problems left ([] if none).

    Without a DNS server in the platform settings, or for a tenant whose zone is external, nothing is sent:
    the operator is told which address records the commune must change.
    """
    from tnoctl.actions import tenant_dns_sync

    try:
        if not tenant_dns_sync.platform_publishes(env, slug):
            expected = tenant_dns_sync.expected_of(env, slug)
            moved = [f"{r.name} {r.rtype} {r.value}" for r in expected if r.kind == "a"]
            who = ("its zone is external (dns.zone): the commune must publish these records"
                   if env.inventory.row(slug).dns_zone == "external"
                   else "no tno_dns_server: publish these records yourself")
            if moved:
                env.output.warn(f"{slug}: {who}: {', '.join(moved)}")
            return []
        statuses = tenant_dns_sync.publish_tenant(env, op, slug, dns_client)
    except (InvalidInput, OperationFailed) as exc:
        return [f"{exc} (then: tnoctl dns publish --tenant {slug})"]
    return tenant_dns_sync.errors_of(slug, statuses)


def set_mail_placement(text: str, host: str) -> str:
    """Rewrite ``placement.mail`` in a tenant file's text, keeping comments and layout. Pure."""
    for pattern in (_PLACEMENT_BLOCK, _PLACEMENT_FLOW):
        new, count = pattern.subn(lambda m: m.group(1) + host, text, count=1)
        if count:
            return new
    raise InvalidInput("tenant file has no placement.mail to rewrite")


def move_placement(inventory_path: Path, slug: str, host: str) -> str:
    """Point the tenant's mail placement at ``host`` in ``tenants/<slug>.yml``; return the old host."""
    from tnoctl.config.vault import atomic_write

    path = inventory_path / "tenants" / f"{slug}.yml"
    text = path.read_text()
    old = _current_mail(text)
    atomic_write(path, set_mail_placement(text, host).encode(), 0o644)
    return old


def _current_mail(text: str) -> str:
    for pattern in (_PLACEMENT_BLOCK, _PLACEMENT_FLOW):
        match = pattern.search(text)
        if match:
            return match.group(2)
    return ""


RSPAMD_MILTER_PORT = 11332
"""Rspamd's milter on 127.0.0.1 (roles/tno_mail/vars/main.yml ``__tno_mail_rspamd_milter_port``)."""
MILTER_WAIT_SECONDS = 60
WAIT_FOR_PORT = (
    "import socket, sys, time\n"
    "end = time.monotonic() + float(sys.argv[2])\n"
    "while True:\n"
    "    try:\n"
    "        socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()\n"
    "        break\n"
    "    except OSError:\n"
    "        if time.monotonic() > end:\n"
    "            sys.exit(1)\n"
    "        time.sleep(0.2)\n"
)
"""Run on the mail host: exit 0 once 127.0.0.1:PORT accepts a connection, 1 after SECONDS."""


def restart_signer(env: Env, host: str) -> str:
    """Restart Rspamd (it signs with the restored DKIM keys) and wait for its milter; "" or what failed.

    Postfix's milter_default_action is tempfail: while the milter is down, every SMTP command that
    reaches it answers 4xx (STARTTLS: ``454 4.3.0 Try again later``) and the other mail hosts defer the
    commune's mail for their whole backoff (minutes) right after the recovery.
    """
    env.ssh.run(host, ["systemctl", "restart", "rspamd"])
    waited = env.ssh.run(host, ["python3", "-c", WAIT_FOR_PORT, str(RSPAMD_MILTER_PORT), str(MILTER_WAIT_SECONDS)],
                         timeout=MILTER_WAIT_SECONDS + 30)
    if waited.ok:
        return ""
    return f"Rspamd's milter does not answer on 127.0.0.1:{RSPAMD_MILTER_PORT} after {MILTER_WAIT_SECONDS}s"


def restore_tenant(env: Env, target: BackupTarget, archive: str) -> TenantResult:
    """Host agent restore of a whole tenant on its (new) mail host, then restart Rspamd (signer) and wait for it."""
    start = state_store.now()
    data, ran, error = run_agent(env, target.mail_host or "", ["restore-tenant", target.slug, archive],
                                 FETCH_TIMEOUT)
    if data is None:
        return TenantResult(target.slug, False, f"restore failed: {error}", state_store.now() - start)
    signer = restart_signer(env, target.mail_host or "")
    ok = ran and bool(data.get("ok")) and not signer
    detail = (f"{archive} -> {target.mail_host}: {data.get('mailboxes')} mailboxes, {data.get('checked')} messages, "
              f"{data.get('missing')} missing, userdb missing {data.get('userdb_missing')}")
    if signer:
        detail += f"; {signer}"
    record(env, target.slug, ok, start)
    return TenantResult(target.slug, ok, detail, state_store.now() - start, data)


def run_agent(env: Env, host: str, args: list[str], timeout: float) -> tuple[dict | None, bool, str]:
    """Run the host agent (``tno-backup ARGS``) on ``host``: (its last JSON line or None, rc 0, stderr tail)."""
    result = env.ssh.run(host, [naming.AGENT, *args], timeout=timeout)
    try:
        return last_json(result.stdout), result.ok, ""
    except ValueError:
        return None, False, result.stderr.strip()[-300:]


def record(env: Env, slug: str, ok: bool, start: float) -> None:
    """The restore in the state store (the exporter's last-restore figures)."""
    end = state_store.now()
    env.store.record_operation(state_store.OperationRecord(slug, "restore", ok, end, end - start))
