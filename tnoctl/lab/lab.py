"""`Lab`: bring the whole lab up, down, report it, restart one host.

This is the orchestration of the single-job modules: base image (base.py), network (net.py),
hosts (hosts.py), apt proxy and repo server (aptproxy.py), lab DNS (dns.py: knotd) and ACME CA
(acme.py: pebble), SSH client files (sshfiles.py),
the lab CA (ca.py) and the local apt repo (aptrepo.py). `up` converges: whatever is already
running is kept, whatever is stale (killed processes, leftover netns/veths/nspawn dirs) is
cleaned first. `down` leaves no process, netns, bridge or mount behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tnoctl import paths
from tnoctl.errors import OperationFailed, Refused
from tnoctl.lab import aptproxy, base, etchosts, hosts, net, procs, sshfiles, topology
from tnoctl.lab.cmd import log, step
from tnoctl.run.ssh import SshRunner

ROOT_MESSAGE = "tnoctl lab needs root (it creates network namespaces and mounts); run it as root"
KEYRING_NAME = "tno-lab-archive-keyring.gpg"
SYSTEM_WAIT_TIMEOUT = 120
APT_UPDATE_TIMEOUT = 180


@dataclass(frozen=True)
class HostStatus:
    """One line of `tnoctl lab status`."""

    name: str
    address: str
    state: str  # running | stopped | stale

    def as_dict(self) -> dict[str, str]:
        """The --json form."""
        return {"name": self.name, "address": self.address, "state": self.state}


def require_root() -> None:
    """Refuse (exit 4) unless running as root."""
    if os.geteuid() != 0:
        raise Refused(ROOT_MESSAGE)


def host_state(running: bool, has_record: bool, has_netns: bool) -> str:
    """running | stale (leftovers of a host that is not running) | stopped (pure; tested)."""
    if running:
        return "running"
    return "stale" if has_record or has_netns else "stopped"


class Lab:
    """The lab described by a lab inventory, with its runtime under `lab_dir` and cache under `cache_dir`."""

    def __init__(self, inventory_path: Path, lab_dir: Path | None = None, cache_dir: Path | None = None):
        self.inventory_path = Path(inventory_path)
        self.lab_dir = lab_dir or paths.lab_dir()
        self.cache_dir = cache_dir or paths.lab_cache_dir()
        self._topology: topology.Topology | None = None

    # ------------------------------------------------------------------ paths
    @property
    def topology(self) -> topology.Topology:
        """Hosts and tenants of the lab inventory (read once)."""
        if self._topology is None:
            self._topology = topology.load(self.inventory_path)
        return self._topology

    @property
    def ssh_config_path(self) -> Path:
        """ssh_config for `ssh -F PATH mail1` (strict host-key checking)."""
        return self.lab_dir / "ssh_config"

    @property
    def known_hosts_path(self) -> Path:
        """known_hosts written from the hosts' own key files."""
        return self.lab_dir / "known_hosts"

    @property
    def acng_dir(self) -> Path:
        """apt-cacher-ng's run dir (private config copy, logs, PID record)."""
        return self.lab_dir / "acng"

    @property
    def apt_dir(self) -> Path:
        """The local apt repo (`repo/`), its keyring and its server's PID record."""
        return self.lab_dir / "apt"

    @property
    def dns_dir(self) -> Path:
        """knotd's run dir (config with the TSIG secret, zones, journal, PID record)."""
        return self.lab_dir / "dns"

    @property
    def acme_dir(self) -> Path:
        """pebble's run dir (config, console log, PID record)."""
        return self.lab_dir / "acme"

    @property
    def acme_root_path(self) -> Path:
        """pebble's current root, fetched at start; lab hosts trust it next to the lab CA."""
        from tnoctl.lab.acme import ROOT_FILE

        return self.lab_dir / "ca" / ROOT_FILE

    def _servers(self) -> dict[str, Path]:
        return {"apt-cacher-ng": self.acng_dir / "acng.json", "apt repo server": self.apt_dir / "server.json",
                "lab DNS (knotd)": self.dns_dir / "knotd.json", "lab ACME CA (pebble)": self.acme_dir / "pebble.json"}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One lab operation at a time (flock on lab_dir/.lock)."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        self.lab_dir.chmod(0o755)
        with open(self.lab_dir / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log("another tnoctl lab operation is running; waiting for it")
                fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    # ------------------------------------------------------------------ status
    def _server_running(self, record_path: Path) -> bool:
        record = procs.ProcRecord.load(record_path)
        return record is not None and procs.matches(record)

    def status(self) -> list[HostStatus]:
        """State of every lab host: running | stopped | stale."""
        result = []
        for host in self.topology.hosts:
            hd = hosts.host_dir(self.lab_dir, host.name)
            state = host_state(hosts.is_running(hd), hd.nspawn_record.exists(), net.netns_exists(host.name))
            result.append(HostStatus(host.name, host.address, state))
        return result

    def is_up(self) -> bool:
        """True when every host and both servers run (what `up` would leave)."""
        hosts_up = all(s.state == "running" for s in self.status())
        return hosts_up and all(self._server_running(p) for p in self._servers().values())

    # ------------------------------------------------------------------ up
    def up(self, fresh: bool = False) -> bool:
        """Bring the lab up; return False when it was already up (nothing done), True otherwise."""
        require_root()
        t0 = time.monotonic()
        with self._locked():
            if fresh:
                self._down_locked()
            elif self.is_up():
                self._write_client_files()
                log(f"lab is already up ({len(self.topology.hosts)} hosts); ssh -F {self.ssh_config_path} HOST")
                return False
            image, pubkey, ca_cert = self._shared_parts()
            self._start_hosts(image, pubkey, ca_cert)
            self._write_client_files()
            self._wait_systemd()
            self._refresh_apt_lists()
        log(f"lab up: {len(self.topology.hosts)} hosts in {time.monotonic() - t0:.1f}s; "
            f"ssh -F {self.ssh_config_path} {self.topology.hosts[0].name}")
        return True

    def prepare(self) -> None:
        """Build (or reuse) what every ``up`` needs first and that outlives the lab: the base image and
        the local signed apt repo, both cached under ``cache_dir``. Nothing boots, nothing listens.

        Why: on a cold machine the base image (debootstrap) is most of the first ``lab up``. ``make
        test`` runs this in the background while the unit tests use the other core; the lab lock
        makes a concurrent ``up`` wait for it instead of building the same image twice.
        """
        require_root()
        t0 = time.monotonic()
        with self._locked():
            base.ensure_base(self.cache_dir)
            self._ensure_apt_repo()
        log(f"lab prepared in {time.monotonic() - t0:.1f}s (base image and apt repo cached in {self.cache_dir})")

    def up_hosts(self, names: list[str]) -> list[str]:
        """Boot only ``names`` (hosts of the lab inventory), with the lab's shared parts; return those started.

        The other hosts are left as they are: a host added to the inventory later (e.g. ``mail3``, a
        fresh machine for a disaster-recovery exercise: tnoctl.lab.spare) joins a running lab in
        seconds, without `lab up` touching the session's fleet. Hosts already running are kept.
        """
        require_root()
        for name in names:
            self.topology.host(name)  # unknown name: error before anything starts
        t0 = time.monotonic()
        with self._locked():
            image, pubkey, ca_cert = self._shared_parts()
            started = self._start_hosts(image, pubkey, ca_cert, only=names)
            self._write_client_files()
            if started:
                self._wait_systemd(started)
                self._refresh_apt_lists(started)
        log(f"lab hosts up: {', '.join(started) or 'none started (already running)'} "
            f"in {time.monotonic() - t0:.1f}s")
        return started

    def remove_host(self, name: str) -> str:
        """Power one host off and discard its directory (disk included); ssh files rewritten without it.

        The host need not be in the inventory any more (the undo of a temporary host); `lab down`
        also removes every host directory it finds.
        """
        require_root()
        with self._locked():
            outcome = self._stop_one(name)
            hosts.remove(self.lab_dir, name)
            if self.ssh_config_path.exists():
                self._write_client_files()
        return outcome

    def _shared_parts(self) -> tuple[base.BaseImage, str, Path]:
        """What every host boot needs, converged: stale leftovers cleaned, base image, lab key, CA and
        host certificates, apt repo, bridge, servers; returns (image, public key, CA certificate)."""
        self._clean_stale()
        image = base.ensure_base(self.cache_dir)
        pubkey = sshfiles.ensure_key(self.lab_dir).with_suffix(".pub").read_text()
        ca_cert = self._ensure_ca()
        self._ensure_apt_repo()
        net.ensure_bridge()
        self._start_servers()
        return image, pubkey, ca_cert

    def _clean_stale(self) -> None:
        """Remove what killed processes left: dead records, netns, veths, nspawn dirs (disks kept)."""
        for status in self.status():
            if status.state == "stale":
                log(f"{status.name}: cleaning stale state (process gone, netns/records left)")
                hosts.stop(self.lab_dir, status.name)
        for what, record_path in self._servers().items():
            if record_path.exists() and not self._server_running(record_path):
                log(f"{what}: removing stale PID record")
                record_path.unlink()

    def _ensure_ca(self) -> Path:
        """Lab CA + host certificates covering every tenant service name placed on each host."""
        with step("lab CA and host certificates"):
            return self.refresh_certificates()

    def refresh_certificates(self) -> Path:
        """(Re-)issue host certificates whose SANs no longer match the inventory; returns the CA cert.

        Called by `lab up` and by `deploy` on the lab inventory, so a tenant added after the lab
        came up gets its `mail.`/`office.` names certified before the roles copy the files.
        """
        from tnoctl.lab import ca

        crt = ca.ensure_ca(self.lab_dir / "ca")
        ca.ensure_host_certs(self.lab_dir / "ca", self.lab_dir / "certs", etchosts.cert_sans(self.topology))
        return crt

    def serve_new_zones(self) -> list[str]:
        """Zones of the tenant domains added to the inventory since `lab up`, served by the running knotd.

        What an operator does at the DNS server before onboarding a commune (RFC 2136 cannot create a
        zone); the zones already served, and the records published in them, are left alone.
        """
        from tnoctl.lab import dns

        require_root()
        with self._locked():
            added = dns.add_zones(self.dns_dir, dns.lab_zones(self.topology))
        log(f"lab DNS: zones added: {', '.join(added) or 'none (all served)'}")
        return added

    def drop_zones(self, names: list[str]) -> list[str]:
        """Stop serving these zones (the commune left the lab inventory); return those removed."""
        from tnoctl.lab import dns

        require_root()
        with self._locked():
            return dns.remove_zones(self.dns_dir, names)

    def _ensure_apt_repo(self) -> None:
        """Build/refresh the local signed apt repo (tnoctl.lab.aptrepo) and put its keyring in place."""
        from tnoctl.lab import aptrepo

        with step("local apt repo"):
            keyring = aptrepo.ensure_repo(self.cache_dir, self.apt_dir / "repo")
            target = self.apt_dir / KEYRING_NAME
            if Path(keyring).resolve() != target.resolve():
                shutil.copyfile(keyring, target)
            target.chmod(0o644)

    def _start_servers(self) -> None:
        acng_record = self.acng_dir / "acng.json"
        if not self._server_running(acng_record):
            with step("apt-cacher-ng on 198.18.0.1:3142"):
                self.acng_dir.mkdir(parents=True, exist_ok=True)
                aptproxy.start_acng(self.acng_dir, self.cache_dir / "apt-cacher-ng").save(acng_record)
        repo_record = self.apt_dir / "server.json"
        if not self._server_running(repo_record):
            with step("local apt repo server on 198.18.0.1:8081"):
                _make_world_readable(self.apt_dir)
                record = aptproxy.start_repo_server(self.apt_dir / "repo", self.apt_dir / "server.log")
                record.save(repo_record)
        self._start_dns_and_acme()

    def _tsig_secret(self) -> str:
        """The lab DNS's TSIG secret from the lab inventory's vault (never logged)."""
        from tnoctl.config.vault import decrypt_value
        from tnoctl.lab.dns import TSIG_VAULT_NAME

        return decrypt_value(self.inventory_path, self.inventory_path / "vault-password", TSIG_VAULT_NAME)

    def _start_dns_and_acme(self) -> None:
        """knotd on 198.18.0.1:53, then pebble resolving through it; pebble's root fetched for the hosts."""
        from tnoctl.lab import acme, dns

        knot_record = self.dns_dir / "knotd.json"
        if not self._server_running(knot_record):
            with step("lab DNS (knotd) on 198.18.0.1:53"):
                self.dns_dir.mkdir(parents=True, exist_ok=True)
                dns.start_knot(self.dns_dir, self.topology, self._tsig_secret()).save(knot_record)
        pebble_record = self.acme_dir / "pebble.json"
        if not self._server_running(pebble_record):
            with step(f"lab ACME CA (pebble) on {acme.DIRECTORY_URL}"):
                from tnoctl.lab import ca

                ca_dir, certs_dir = self.lab_dir / "ca", self.lab_dir / "acme" / "certs"
                certs_dir.mkdir(parents=True, exist_ok=True)
                ca.ensure_host_certs(ca_dir, certs_dir, {"acme": acme.CERT_SANS})
                record = acme.start_pebble(self.acme_dir, certs_dir / "acme.crt", certs_dir / "acme.key")
                record.save(pebble_record)
                acme.fetch_root(ca_dir / "ca.crt", self.acme_root_path)
                acme.write_trust_bundle(ca_dir / "ca.crt", self.acme_root_path, ca_dir / acme.TRUST_FILE)

    def _start_hosts(self, image: base.BaseImage, pubkey: str, ca_cert: Path | None,
                     only: list[str] | None = None) -> list[str]:
        """Boot the hosts that are not running (of ``only`` when given); their names."""
        hosts_text = etchosts.render_hosts_file(self.topology)
        to_start = [s for s in self.status() if s.state != "running" and (only is None or s.name in only)]
        if not to_start:
            return []
        with step(f"starting {', '.join(s.name for s in to_start)}"):
            started = []
            for status in to_start:
                host = self.topology.host(status.name)
                record = hosts.start(self.lab_dir, host, image.rootfs, image.name, hosts_text, pubkey, ca_cert,
                                     self._acme_root())
                started.append((host, record))
            with ThreadPoolExecutor(max_workers=len(started)) as pool:
                for fut in [pool.submit(hosts.wait_booted, self.lab_dir, h, r) for h, r in started]:
                    fut.result()
        return [s.name for s in to_start]

    def _acme_root(self) -> Path | None:
        return self.acme_root_path if self.acme_root_path.is_file() else None

    def _write_client_files(self) -> None:
        """known_hosts from the hosts' upper dirs + ssh_config."""
        lines: list[str] = []
        for host in self.topology.hosts:
            etc_ssh = hosts.host_dir(self.lab_dir, host.name).upper / "etc/ssh"
            lines += sshfiles.known_hosts_lines(host, sshfiles.host_pubkeys(etc_ssh))
        sshfiles.write_atomic(self.known_hosts_path, "\n".join(lines) + "\n")
        sshfiles.write_atomic(self.ssh_config_path, sshfiles.render_ssh_config(self.topology.hosts, self.lab_dir))

    def ssh_argv(self, host: str, command: list[str] | None = None) -> list[str]:
        """argv of `ssh -F ssh_config HOST [CMD...]` for a lab host (logs in as the operator account)."""
        self.topology.host(host)
        return ["ssh", "-F", str(self.ssh_config_path), host, *(command or [])]

    def ssh_runner(self) -> SshRunner:
        """The product's SSH factory for the lab inventory (operator account + sudo, strict host keys)."""
        return SshRunner.for_inventory(self.topology.inventory)

    def _wait_systemd(self, names: list[str] | None = None) -> None:
        """Wait (over real SSH) until each host's systemd finished booting; warn on `degraded`."""
        names = names or [h.name for h in self.topology.hosts]
        runner = self.ssh_runner()

        def one(name: str) -> tuple[str, str]:
            try:
                res = runner.run(name, ["systemctl", "is-system-running", "--wait"], timeout=SYSTEM_WAIT_TIMEOUT)
            except OperationFailed as exc:
                return name, str(exc)
            return name, (res.stdout.strip() or res.stderr.strip() or f"rc={res.rc}")

        with step("waiting for systemd in the hosts"), runner, ThreadPoolExecutor(max_workers=len(names)) as pool:
            results = list(pool.map(one, names))
        bad = [f"{n}: {state}" for n, state in results if state not in ("running", "degraded")]
        for name, state in results:
            if state == "degraded":
                log(f"warning: {name}: systemd is degraded (ssh -F {self.ssh_config_path} {name} "
                    "systemctl --failed)")
        if bad:
            raise OperationFailed("lab hosts did not finish booting", details=bad)

    def _refresh_apt_lists(self, names: list[str] | None = None) -> None:
        """Fresh apt lists in each host, like a freshly provisioned server image.

        Hosts whose apt sources and configuration are identical (same digest) get identical lists:
        `apt-get update` runs in the first host of each such group, and its lists are copied to
        the others over SSH (a tar stream, seconds instead of ~15 s of `apt-get update` each).
        `apt-get update` itself stays serial on purpose: apt-cacher-ng fails ("Failure to move
        file out of the way") when several clients refresh the same InRelease within one second,
        and apt can then hang on the broken connection. With fresh lists, the roles'
        `cache_valid_time` skips the update during deploys.
        """
        names = names or [h.name for h in self.topology.hosts]
        with step(f"apt lists in {len(names)} hosts"), self.ssh_runner() as runner:
            digests = _parallel(lambda n: _apt_sources_digest(runner, n), names)
            groups: dict[str, list[str]] = {}
            for name, digest in zip(names, digests, strict=True):
                groups.setdefault(digest or f"unknown:{name}", []).append(name)
            for members in groups.values():
                _refresh_group(runner, members)

    # ------------------------------------------------------------------ down
    def down(self) -> None:
        """Stop every host (in parallel), the servers, remove netns/bridge/run dirs. Idempotent."""
        require_root()
        t0 = time.monotonic()
        with self._locked():
            self._down_locked()
        log(f"lab down in {time.monotonic() - t0:.1f}s")

    def _stop_one(self, name: str) -> str:
        """Stop one host and log how (stopped/killed/gone) and how long it took."""
        t0 = time.monotonic()
        outcome = hosts.stop(self.lab_dir, name)
        log(f"{name}: {outcome} in {time.monotonic() - t0:.2f}s")
        return outcome

    def _down_locked(self) -> None:
        names = {h.name for h in self.topology.hosts}
        hosts_root = self.lab_dir / "hosts"
        if hosts_root.is_dir():
            names |= {p.name for p in hosts_root.iterdir() if p.is_dir()}
        if names:
            with step(f"stopping {len(names)} hosts"), ThreadPoolExecutor(max_workers=len(names)) as pool:
                list(pool.map(self._stop_one, sorted(names)))
        for what, record_path in self._servers().items():
            record = procs.ProcRecord.load(record_path)
            if record is not None:
                log(f"{what}: {procs.stop(record, timeout=10)}")
                record_path.unlink(missing_ok=True)
        net.remove_bridge()
        shutil.rmtree(hosts_root, ignore_errors=True)
        shutil.rmtree(self.acng_dir, ignore_errors=True)
        shutil.rmtree(self.dns_dir, ignore_errors=True)  # its knot.conf holds the TSIG secret
        shutil.rmtree(self.acme_dir, ignore_errors=True)
        self.acme_root_path.unlink(missing_ok=True)  # pebble's root dies with pebble
        from tnoctl.lab.acme import TRUST_FILE

        (self.lab_dir / "ca" / TRUST_FILE).unlink(missing_ok=True)  # and so does the bundle holding it
        for path in (self.known_hosts_path, self.ssh_config_path, self.apt_dir / "server.log"):
            path.unlink(missing_ok=True)

    # ------------------------------------------------------------------ one host
    def stop_host(self, name: str) -> str:
        """Power one host off (its disk is kept); `restart_host(name)` boots it again."""
        require_root()
        self.topology.host(name)  # unknown name -> error before anything is stopped
        with self._locked():
            return self._stop_one(name)

    def restart_host(self, name: str, wipe: bool = False) -> None:
        """Stop one host; with `wipe` discard its disk (fresh machine, new host keys); start it again."""
        require_root()
        host = self.topology.host(name)
        with self._locked():
            if not self.is_up():
                self._clean_stale()
            image = base.ensure_base(self.cache_dir)
            with step(f"stopping {name}"):
                hosts.stop(self.lab_dir, name)
            if wipe:
                log(f"{name}: wiping its disk")
                hosts.wipe_disk(hosts.host_dir(self.lab_dir, name))
            pubkey = sshfiles.ensure_key(self.lab_dir).with_suffix(".pub").read_text()
            ca_path = self.lab_dir / "ca" / "ca.crt"
            net.ensure_bridge()
            with step(f"starting {name}"):
                hosts_text = etchosts.render_hosts_file(self.topology)
                ca_cert = ca_path if ca_path.is_file() else None
                record = hosts.start(self.lab_dir, host, image.rootfs, image.name, hosts_text, pubkey, ca_cert,
                                     self._acme_root())
                hosts.wait_booted(self.lab_dir, host, record)
            self._write_client_files()
            self._wait_systemd([name])
            if wipe:
                self._refresh_apt_lists([name])


_APT_STATE = ("var/lib/apt/lists", "var/lib/apt/periodic")


def _parallel(fn, items: list[str]) -> list:
    """``fn`` over ``items`` in threads (SSH round trips), results in order."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(fn, items))


def _apt_sources_digest(runner: SshRunner, name: str) -> str | None:
    """A digest of what decides a host's apt lists: its sources and its apt configuration."""
    script = ("cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; apt-config dump; "
              "dpkg --print-architecture")
    try:
        res = runner.run(name, ["sh", "-c", f"({script}) | sha256sum"], timeout=60)
    except OperationFailed:
        return None
    return res.stdout.split()[0] if res.rc == 0 and res.stdout.strip() else None


def _refresh_group(runner: SshRunner, members: list[str]) -> None:
    """Hosts with identical apt sources: update the first, copy its lists to the others."""
    first, rest = members[0], members[1:]
    if not _apt_update(runner, first):
        for name in rest:  # no good lists to copy: each host tries by itself
            _apt_update(runner, name)
        return
    if not rest:
        return
    archive = _lists_archive(runner, first)
    copied = _parallel(lambda n: _unpack_lists(runner, n, archive), rest)
    for name, ok in zip(rest, copied, strict=True):
        if not ok:  # a copy that failed: the host refreshes by itself
            _apt_update(runner, name)


def _run_or_warn(runner: SshRunner, name: str, argv: list[str], what: str, input: bytes | None = None) -> bool:
    """Run ``argv`` in one host; a failure is logged as a warning naming ``what`` (never raised)."""
    try:
        res = runner.run(name, argv, timeout=APT_UPDATE_TIMEOUT, input=input)
    except OperationFailed as exc:
        log(f"warning: {name}: {what} failed: {exc}")
        return False
    if res.rc != 0:
        log(f"warning: {name}: {what} failed: {res.stderr.strip().splitlines()[-1:]}")
    return res.rc == 0


def _apt_update(runner: SshRunner, name: str) -> bool:
    """`apt-get update` in one host; a failure is a warning (the deploy's apt tasks refresh again)."""
    return _run_or_warn(runner, name, ["apt-get", "-q", "update"], "apt-get update")


def _lists_archive(runner: SshRunner, name: str) -> bytes:
    """The host's fresh apt lists and update stamp as a gzip'd tar (lock files and partial/ left out).

    Empty when reading them failed: the other hosts then refresh by themselves.
    """
    chunks: list[bytes] = []
    argv = ["tar", "-C", "/", "--exclude=lock", "--exclude=partial", "-czf", "-", *_APT_STATE]
    try:
        rc = runner.stream(name, argv, chunks.append, timeout=APT_UPDATE_TIMEOUT)
    except OperationFailed as exc:
        log(f"warning: {name}: reading apt lists failed: {exc}")
        return b""
    return b"".join(chunks) if rc == 0 else b""


def _unpack_lists(runner: SshRunner, name: str, archive: bytes) -> bool:
    """Install another host's apt lists (same sources) in ``name``; False when that failed."""
    if not archive:
        return False
    return _run_or_warn(runner, name, ["tar", "-C", "/", "-xzf", "-"], "copying apt lists", input=archive)


def _make_world_readable(apt_dir: Path) -> None:
    """The repo server runs as nobody: make lab_dir/apt/repo and the public keyring readable.

    Never apt/gnupg: it holds the repository's private signing key.
    """
    repo = apt_dir / "repo"
    apt_dir.chmod(apt_dir.stat().st_mode | 0o111)  # traversable only, not listable
    for path in [repo, *repo.rglob("*"), apt_dir / KEYRING_NAME]:
        if not path.exists():
            continue
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod(mode | (0o555 if path.is_dir() else 0o444))
