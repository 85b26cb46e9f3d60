"""Pure planner for `backup` and `restore`: which tenants, on which hosts, with which commands. No I/O.

Backups run per tenant and per component on the host serving it (``tno-backup run SLUG`` on the
mail host, ``tno-backup run SLUG.office`` on the office host: the commands the systemd timers
run), into one repository per tenant. A tenant has the components of its services: mail and
office, mail only, or office only (its repository then holds its office configuration alone).
Reads (list, verify, drill) and pruning run on the backup host with the passphrase from the
vault, so they work when the mail host is gone, and prove the vault copy of the passphrase opens
the repository (what a disaster recovery depends on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from tnoctl.backup import borg, naming
from tnoctl.errors import InvalidInput
from tnoctl.plan.calls import PlaybookCall

BACKUP_PLAYBOOK = "backup.yml"
SITE_PLAYBOOK = "site.yml"


@dataclass(frozen=True)
class BackupTarget:
    """One tenant's backup: where its mail and/or office live, where its repository lives, its retention."""

    slug: str
    mail_host: str | None  # None: office-only tenant (no mail component)
    backup_host: str
    retention: dict[str, int]
    office_host: str | None = None  # ships coolwsd.xml, the proof key and the proxy config (docs/backups.md)

    @property
    def components(self) -> tuple[str, ...]:
        """What this tenant's backup covers, in run order: mail (if any), then office (if any)."""
        return tuple(c for c, host in (("mail", self.mail_host), ("office", self.office_host)) if host)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts that ship this tenant's components, in component order."""
        return tuple(self.host_of(c) for c in self.components)

    def host_of(self, component: str) -> str:
        """The host that ships ``component`` to the backup host; InvalidInput if the tenant has none."""
        host = self.mail_host if component == "mail" else self.office_host
        if not host:
            raise InvalidInput(f"tenant {self.slug} has no {component} service")
        return host

    @property
    def repo(self) -> str:
        """Repository path on the backup host."""
        return naming.repo_path(self.slug)


def retention_of(tenant: Any, platform: Any) -> dict[str, int]:
    """Platform retention with the tenant's overrides applied (same rule as the Ansible view).

    ``tenant`` is a model (``backup`` a BackupOverride) or an inventory row (``backup`` a dict).
    """
    merged = dict(platform.tno_backup_retention.model_dump())
    overrides = tenant.backup if isinstance(tenant.backup, dict) else tenant.backup.model_dump()
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return merged


def plan_targets(inventory: Any, tenants: list[str] | tuple[str, ...] = ()) -> list[BackupTarget]:
    """Targets for the selected tenants (default: every tenant with a service), sorted by slug.

    A component is backed up where its service is enabled and placed: a mail-only tenant has no
    office component, an office-only one no mail component (never "nothing to back up").
    """
    backup_host = inventory.platform.tno_backup_host
    if backup_host not in inventory.hosts:
        raise InvalidInput(f"tno_backup_host '{backup_host}' is not a host of the inventory")
    if hasattr(inventory, "rows"):  # the loader's rows: no tenant file parsed (the exporter's sync, every 30 s)
        chosen = [inventory.row(s) for s in sorted(set(tenants))] if tenants else list(inventory.rows)
    else:
        chosen = [inventory.tenant(s) for s in sorted(set(tenants))] if tenants else list(inventory.tenants)
    out = []
    for tenant in chosen:
        mail, office = (getattr(tenant.placement, c) if c in tenant.services else None for c in ("mail", "office"))
        if not mail and not office:
            if tenants:
                raise InvalidInput(f"tenant {tenant.slug} has no placed service: nothing to back up")
            continue
        retention = retention_of(tenant, inventory.platform)
        out.append(BackupTarget(tenant.slug, mail or None, backup_host, retention, office or None))
    return sorted(out, key=lambda t: t.slug)


def require_mail(target: BackupTarget) -> str:
    """The tenant's mail host, for mail-only operations (mailbox restore, Maildir export); InvalidInput if none."""
    if not target.mail_host:
        raise InvalidInput(f"tenant {target.slug} has no mail service: no mailbox to restore or export")
    return target.mail_host


def site_call(hosts: list[str] | tuple[str, ...]) -> PlaybookCall:
    """``site.yml`` as `deploy` runs it, limited to ``hosts``."""
    return PlaybookCall(playbook=SITE_PLAYBOOK, extra_vars={"tno_action": "deploy"}, limit=tuple(sorted(hosts)))


def setup_call(hosts: list[str] | tuple[str, ...] = ()) -> PlaybookCall:
    """The backup deployment (role tno_backup, three plays); ``hosts`` limits it."""
    return PlaybookCall(playbook=BACKUP_PLAYBOOK, extra_vars={"tno_action": "deploy"}, limit=tuple(sorted(hosts)))


def disaster_hosts(new_host: str, old_host: str | None, mail_hosts: list[str] | tuple[str, ...],
                   old_reachable: bool) -> tuple[str, ...]:
    """The hosts ``site.yml`` deploys when a tenant's mail moves from ``old_host`` to ``new_host``.

    The new host, and every other mail host: their postscreen allowlist names the addresses of the hosts
    serving the other communes (mail between communes goes by MX, whose A record the restore moves).
    The old host is one of them only while it answers (it then stops accepting the tenant's domains
    locally); a dead host is left out, or the whole run would fail on it. A restore onto the same host
    (rebuilt in place) changes no route: the host alone.
    """
    if not old_host or old_host == new_host:
        return (new_host,)
    others = {h for h in mail_hosts if h != old_host or old_reachable}
    return tuple(sorted({new_host, *others}))


class DisasterPhases(NamedTuple):
    """The playbook calls of ``restore --to-host``, in the order the recovery runs them.

    ``keys`` first: the backup side (the new host's key authorized on the backup host, its borgmatic
    configuration of the tenant written; the old host's backup of the tenant dropped). Then ``serve``
    (``site.yml`` on the new host, and on the old host when it answers: it stops accepting the tenant's
    domains in the same run, so no mail lands on both) runs while the new host already extracts the
    tenant's archive, which needs only ``keys``. ``follow`` runs after the tenant's DNS moved, off the
    recovery's critical path: ``site.yml`` on the other mail hosts, whose postscreen allowlist must name
    the new host's address.
    """

    keys: PlaybookCall
    serve: PlaybookCall
    follow: tuple[PlaybookCall, ...]


def disaster_phases(new_host: str, backup_host: str, site_hosts: list[str] | tuple[str, ...] = (),
                    old_host: str | None = None) -> DisasterPhases:
    """The calls of a recovery onto ``new_host`` (see DisasterPhases); ``site_hosts``: disaster_hosts()."""
    deployed = set(site_hosts) | {new_host}
    first = {new_host, *([old_host] if old_host and old_host in deployed else [])}
    backed = {*first, backup_host}
    others = tuple(deployed - first)
    return DisasterPhases(setup_call(tuple(backed)), site_call(tuple(first)), (site_call(others),) if others else ())


def prune_args(target: BackupTarget) -> list[list[str]]:
    """borg commands run on the backup host by ``backup prune``, then ``compact``.

    One pass per kind of archive (naming.archive_glob): scheduled mail and office archives get the
    tenant's retention; tagged snapshots (``pre-upgrade-<op>``) are kept ``--keep-within`` the
    daily horizon (keep_daily days, at least 1) in their own pass, so they never take the daily slot
    of a scheduled archive and live at least as long as a daily archive of the same day.
    """
    keep = [f"--keep-{k.removeprefix('keep_')}={v}" for k, v in sorted(target.retention.items())]
    within = f"--keep-within={max(1, int(target.retention.get('keep_daily', 1)))}d"
    out = []
    for component in target.components:
        out.append(["prune", "--glob-archives", naming.archive_glob(target.slug, component), *keep, "--stats",
                    target.repo])
        out.append(["prune", "--glob-archives", naming.archive_glob(target.slug, component, tagged=True), within,
                    "--stats", target.repo])
    return [*out, ["compact", target.repo]]


def offboard_calls(hosts: list[str] | tuple[str, ...], backup_host: str,
                   mail_hosts: list[str] | tuple[str, ...] = ()) -> list[PlaybookCall]:
    """After a tenant file left the inventory: redeploy its hosts, then the backup side (its keys dropped).

    ``mail_hosts``: every mail host, for a tenant with mail (their TLS policy map names its domains).
    """
    deployed = tuple(sorted({*hosts, *mail_hosts}))
    return [site_call(deployed), setup_call((*hosts, backup_host))]


def repo_id_command(slug: str) -> list[str]:
    """Print the repository id (from its ``config``, as the owner): it names the clients' borg cache dirs."""
    return borg.owner_command("sed", "-n", "s/^id = //p", f"{naming.repo_path(slug)}/config")


def borg_state_dirs(home: str, repo_id: str) -> list[str]:
    """A host's borg cache and security records of one repository (they name the repository's path)."""
    return [f"{home}/.config/borg/security/{repo_id}", f"{home}/.cache/borg/{repo_id}"]


def shred_commands(slug: str) -> list[list[str]]:
    """The key first (``shred`` of the repokey in ``config``), then the repository and its quarantine."""
    repo = naming.repo_path(slug)
    return [["shred", "-u", "-n", "3", "-z", f"{repo}/config"],
            ["rm", "-rf", "--one-file-system", repo, f"{naming.QUARANTINE_ROOT}/{slug}"]]


def check_args(target: BackupTarget) -> list[list[str]]:
    """borg repository + archive consistency checks (``backup verify``)."""
    return [["check", "--repository-only", target.repo], ["check", "--archives-only", target.repo]]


def info_args(target: BackupTarget) -> list[str]:
    """``borg info --json`` of every archive of the tenant, every kind (``backup list``)."""
    return ["info", "--json", "--glob-archives", f"{target.slug}*", target.repo]


def list_paths_args(target: BackupTarget, archive: str) -> list[str]:
    """``borg list --json-lines`` of one archive's paths (drill: the office files are there)."""
    return ["list", "--json-lines", f"{target.repo}::{archive}"]


def extract_stdout_args(target: BackupTarget, archive: str, path: str) -> list[str]:
    """``borg extract --stdout`` of one archive-relative path (office drill: restore coolwsd.xml)."""
    return ["extract", "--stdout", f"{target.repo}::{archive}", path]


def extract_args(target: BackupTarget, archive: str) -> list[str]:
    """``borg extract`` of a whole archive into the current directory (``backup drill``)."""
    return ["extract", f"{target.repo}::{archive}"]


TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"  # role tno_backup's tno_backup_textfile_dir default
AGENT_STATE_DIR = "/var/lib/tno-backup/state"
TIMER_STAMPS = "/var/lib/systemd/timers"  # Persistent=true timers leave their last-run stamp here


@dataclass(frozen=True)
class RemovalStep:
    """One host's share of offboarding a tenant: stop its backup timer, then delete its files there."""

    host: str
    component: str
    timer: str
    paths: tuple[str, ...]

    @property
    def service(self) -> str:
        """The timer's service instance (``systemctl reset-failed`` forgets it once stopped)."""
        return self.timer.removesuffix(".timer") + ".service"

    @property
    def key(self) -> str:
        """The backup unit key (``slug`` or ``slug.office``), from the timer instance name."""
        return self.timer.removeprefix("tno-backup@").removesuffix(".timer")

    @property
    def drill_timer(self) -> str:
        """The unit's weekly drill timer (one file per unit, not a template instance)."""
        return f"tno-backup-drill-{self.key}.timer"

    @property
    def drill_service(self) -> str:
        """The drill service instance the drill timer starts."""
        return f"tno-backup-drill@{self.key}.service"


def removal_steps(target: BackupTarget, domains: list[str] | tuple[str, ...]) -> list[RemovalStep]:
    """What ``tenant remove`` deletes on each host of the tenant, per component it has.

    Mail host: the Maildirs and DKIM keys of every domain, the mail backup unit (agent config,
    borgmatic config, passphrase, SSH key, staging tree). Office host: the office backup unit
    (the same files, staging of its own office configuration). Both: the unit's agent state,
    manifest cache, lock and node_exporter textfile (a stale textfile would keep alerting on a
    tenant that no longer exists). Configuration shared with other tenants (postfix maps, userdb,
    coolwsd.xml, proxy vhosts, the backup host's authorized_keys) is regenerated without the
    tenant by :func:`offboard_calls`; the repository is crypto-shredded (:func:`shred_commands`).
    """
    out = []
    for component in target.components:
        key = naming.unit_key(target.slug, component)
        paths = [naming.borgmatic_config(target.slug, component), f"/etc/tno-backup/tenants/{key}.json",
                 f"/etc/tno-backup/{key}.passphrase", f"/etc/tno-backup/keys/{key}",
                 f"/etc/tno-backup/keys/{key}.pub", f"{AGENT_STATE_DIR}/{key}.json",
                 f"{AGENT_STATE_DIR}/{key}.initialised", f"{AGENT_STATE_DIR}/{key}.stage.json",
                 f"{AGENT_STATE_DIR}/{key}.manifest-cache.json", f"/run/lock/tno-backup-{key}.lock",
                 f"{TEXTFILE_DIR}/tno_backup_{key}.prom", f"{TIMER_STAMPS}/stamp-tno-backup@{key}.timer",
                 f"{TIMER_STAMPS}/stamp-tno-backup-drill-{key}.timer",
                 f"/etc/systemd/system/tno-backup-drill-{key}.timer"]
        paths.append(f"{naming.STAGING_ROOT}/{key}")
        if component == "mail":
            paths = [f"/srv/vmail/{d}" for d in domains] + [f"/etc/opendkim/keys/{d}" for d in domains] + paths
        out.append(RemovalStep(target.host_of(component), component, f"tno-backup@{key}.timer", tuple(paths)))
    return out
