#!/usr/bin/env python3
"""Write a synthetic inventory for scale tests: `bench/gen_inventory.py --tenants 35000 --out DIR`.

Realistic French commune names (built from common name parts), 1-3 domains and 5-200 mailboxes per
tenant (log-uniform: most communes are small), 50 hosts (20 mail, 20 office/proxy, 10 backup; `--hosts 50`:
50 mail and 50 office/proxy, as issue 18's goals count them, so a mail host carries 700 of 35,000 communes).
Deterministic for a given --seed (except vault ciphertexts, which are salted).

Vault (`--vault-tenants N`, default 0 = no vault file, so password_vault names are not checked):
writes `group_vars/all/vault.yml` naming every secret of every tenant (each mailbox password, each
borg passphrase, the office admin password) as inline `!vault` values, and `vault-password`.
Encrypting costs about 7 ms per value (ansible-vault's PBKDF2), so 1.84 M values would take hours:
only the values of the first N tenants are encrypted one by one (one VaultLib call per value, spread
over the cores); the other tenants' values are copies of one ciphertext (same size and parse cost,
decrypting to a placeholder). So `--tenants 3000 --vault-tenants 3000` is a fully real vault
(156 k secrets, minutes), and `--tenants 35000 --vault-tenants 100` a full-size one that is fast.

`--vault-layout split` (issue 18's per-tenant layout, config/vaultsplit.py): every tenant's secrets go
to `vault/<slug>.yml`, a YAML mapping encrypted as a whole (one VaultLib call, so one PBKDF2, per
tenant: all 35,000 files are real, ~5 ms each, spread over the cores); `vault.yml` keeps the
platform's secrets (office admin, the mail hosts' Rspamd passwords). `--vault-tenants` is then ignored.

`--canary`: every tenant also gets a `canary` mailbox (the probes' login; bench/exporter.py uses it).

`--smoke`: 6 tenants (3 with a vault) in a temporary directory, then loads the result with the
product's loader and decrypts one value (seconds; run by tests/unit/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tnoctl.config import yamlio
from tnoctl.config.hostsecrets import rspamd_password_var

PREFIX = ["Saint", "Sainte", "Villeneuve", "Neuville", "Montagny", "Chassieu", "Brignais", "Mornant", "Vaugneray",
          "Marcy", "Limonest", "Dardilly", "Genay", "Fontaines", "Collonges", "Charbonnières", "Francheville",
          "Craponne", "Irigny", "Feyzin", "Solaize", "Ternay", "Chaponost", "Millery", "Vourles", "Grigny",
          "Échirolles", "Bourg", "Châtillon", "Beaumont", "Montluel", "Miribel", "Anse", "Belleville", "Tarare"]
MIDDLE = ["sur", "lès", "en", "la", "le", "sous", "d'", "de", "aux"]
SUFFIX = ["Saône", "Rhône", "Mont-d'Or", "Dombes", "Beaujolais", "Azergues", "Gier", "Garon", "Brévenne",
          "Forez", "Isère", "Ain", "Lyonnais", "Bois", "Val", "Plaine", "Monts", "Coteaux", "Vignes", "Pierres"]
FIRST = ["jean", "marie", "pierre", "sophie", "nicolas", "julie", "thomas", "camille", "antoine", "claire",
         "lucas", "emma", "hugo", "lea", "louis", "chloe", "paul", "manon", "arthur", "ines"]
LAST = ["martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy", "moreau",
        "simon", "laurent", "lefebvre", "michel", "garcia", "david", "bertrand", "roux", "vincent", "fournier"]


def slugify(text: str) -> str:
    """'Saint-Genis-les-Ollières' -> 'saint-genis-les-ollieres'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return "-".join("".join(c if c.isalnum() else " " for c in plain).split())[:40].strip("-")


def hosts_yml(n_mail: int = 20, n_office: int = 20, n_backup: int = 10) -> str:
    """50 hosts in 198.18.0.0/24 (documentation-style lab range)."""
    def group(prefix: str, count: int, start: int) -> dict:
        return {f"{prefix}{i:02d}": {"ansible_host": f"198.18.0.{start + i}"} for i in range(1, count + 1)}

    offices = group("office", n_office, 100)
    doc = {"all": {"children": {"mail": {"hosts": group("mail", n_mail, 50)}, "office": {"hosts": offices},
                                "proxy": {"hosts": {h: {} for h in offices}},
                                "backup": {"hosts": group("backup", n_backup, 150)}}}}
    return yamlio.dump(doc)


def tenant(rng: random.Random, i: int, used: set[str], canary: bool = False, hosts: int = 20) -> dict:
    """One synthetic commune (with ``canary``: plus the monitoring canary mailbox the probes log in with)."""
    while True:
        name = f"{rng.choice(PREFIX)}-{rng.choice(MIDDLE)}-{rng.choice(SUFFIX)}".replace("d'-", "d'")
        slug = slugify(name)
        if slug not in used:
            break
        name, slug = f"{name} {i}", slugify(f"{name} {i}")
        if slug not in used:
            break
    used.add(slug)
    domains = [f"{slug}.fr"] + [f"{w}.{slug}.fr" for w in ("mairie", "ville")[: rng.randint(0, 2)]]
    count = int(math.exp(rng.uniform(math.log(5), math.log(200))))
    boxes = [{"local": "mairie", "name": f"Mairie de {name}", "quota": "5G",
              "password_vault": f"tno_vault_{slug.replace('-', '_')}_mairie"}]
    if canary:
        boxes.append({"local": "canary", "name": "Supervision", "quota": "1G",
                      "password_vault": f"tno_vault_{slug.replace('-', '_')}_canary"})
    for n in range(count - 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}{n}"
        box = {"local": local, "name": f"{first.title()} {last.title()}", "quota": rng.choice(["1G", "2G", "5G"]),
               "password_vault": f"tno_vault_{slug.replace('-', '_')}_{local.replace('.', '_')}"}
        if len(domains) > 1 and n % 7 == 0:
            box["domain"] = domains[1]
        boxes.append(box)
    mail, office = f"mail{1 + i % hosts:02d}", f"office{1 + i % hosts:02d}"
    return {"slug": slug, "name": name, "insee": f"{1 + i // 1000:02d}{i % 1000:03d}", "domains": domains,
            "services": ["mail", "office"], "placement": {"mail": mail, "office": office}, "mailboxes": boxes,
            "office": {"wopi_hosts": [f"https://cloud.{domains[0]}"]}, "maintenance_window": "Sun 02:00-05:00",
            "pilot": i % 50 == 0, "contacts": [{"name": "DSI", "email": f"dsi@{domains[0]}", "role": "dsi"}]}


def secrets_of(doc: dict) -> list[str]:
    """Vault variable names one tenant needs: every mailbox password and its borg passphrase."""
    return [box["password_vault"] for box in doc["mailboxes"]] + ["tno_vault_borg_" + doc["slug"].replace("-", "_")]


def _encrypt_all(args: tuple[bytes, list[tuple[str, str]]]) -> list[tuple[str, str]]:
    """[(name, ciphertext)] for one tenant's secrets: one VaultLib call per value (in a worker)."""
    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    password, items = args
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    return [(name, lib.encrypt(value.encode()).decode()) for name, value in items]


def _vault_entry(name: str, ciphertext: str) -> str:
    return f"{name}: !vault |\n" + "".join(f"  {line}\n" for line in ciphertext.splitlines())


def write_vault(out: Path, rng: random.Random, tenants: list[list[str]], encrypted: int,
                hosts: int = 20) -> tuple[int, int, float]:
    """Write vault.yml + vault-password; (values, values encrypted one by one, seconds)."""
    started = time.perf_counter()
    password = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(32)).encode()
    (out / "vault-password").write_text(password.decode() + "\n")
    (out / "vault-password").chmod(0o600)

    def pw() -> str:
        return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789") for _ in range(24))

    real = [[(name, pw()) for name in names] for names in tenants[:encrypted]]
    real.append([("tno_vault_office_admin_password", pw()), ("tno_vault_bench_placeholder", "placeholder")])
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = list(pool.map(_encrypt_all, [(password, items) for items in real], chunksize=16))
    *per_tenant, (admin, (_, placeholder)) = done
    # one Rspamd controller password per mail host of hosts_yml() (the placeholder's ciphertext: no extra cost)
    host_secrets = [rspamd_password_var(f"mail{i:02d}") for i in range(1, hosts + 1)]
    count = 1 + len(host_secrets)
    with (out / "group_vars" / "all" / "vault.yml").open("w") as fh:
        fh.write(_vault_entry(*admin))
        fh.writelines(_vault_entry(name, placeholder) for name in host_secrets)
        for items in per_tenant:
            fh.writelines(_vault_entry(name, text) for name, text in items)
            count += len(items)
        for names in tenants[encrypted:]:
            fh.writelines(_vault_entry(name, placeholder) for name in names)
            count += len(names)
    placeholders = sum(len(names) for names in tenants[encrypted:]) + len(host_secrets)
    return count, count - placeholders, time.perf_counter() - started


def _write_tenant_files(args: tuple[Path, bytes, list[tuple[str, list[str]]]]) -> int:
    """Write `vault/<slug>.yml` for a chunk of tenants, each encrypted as a whole (in a worker); names written."""
    import secrets as random_source

    from ansible.constants import DEFAULT_VAULT_ID_MATCH
    from ansible.parsing.vault import VaultLib, VaultSecret

    out, password, chunk = args
    lib = VaultLib([(DEFAULT_VAULT_ID_MATCH, VaultSecret(password))])
    count = 0
    for slug, names in chunk:
        text = "".join(f"{n}: {random_source.token_hex(12)}\n" for n in names)  # 24 characters, as tenant add
        path = out / "vault" / f"{slug}.yml"
        path.write_bytes(lib.encrypt(text.encode()))
        path.chmod(0o600)
        count += len(names)
    return count


def write_split_vault(out: Path, rng: random.Random, tenants: list[tuple[str, list[str]]],
                      hosts: int = 20) -> tuple[int, float]:
    """vault.yml (platform secrets) + one whole-file encrypted `vault/<slug>.yml` per tenant; (values, seconds)."""
    started = time.perf_counter()
    password = "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(32)).encode()
    (out / "vault-password").write_text(password.decode() + "\n")
    (out / "vault-password").chmod(0o600)
    (out / "vault").mkdir(mode=0o700, exist_ok=True)
    platform = [("tno_vault_office_admin_password", "x" * 24)]
    platform += [(rspamd_password_var(f"mail{i:02d}"), "y" * 32) for i in range(1, hosts + 1)]
    with (out / "group_vars" / "all" / "vault.yml").open("w") as fh:
        fh.writelines(_vault_entry(name, text) for name, text in _encrypt_all((password, platform)))
    workers = os.cpu_count() or 1
    size = max(1, len(tenants) // (workers * 16))
    chunks = [(out, password, tenants[i:i + size]) for i in range(0, len(tenants), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        count = sum(pool.map(_write_tenant_files, chunks))
    return count + len(platform), time.perf_counter() - started


def generate(out: Path, tenants: int, seed: int, vault_tenants: int, canary: bool = False,
             layout: str = "inline", hosts: int = 20) -> None:
    """Write the inventory (and the vault when vault_tenants > 0) into ``out``; print what was written."""
    rng = random.Random(seed)
    (out / "tenants").mkdir(parents=True, exist_ok=True)
    (out / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (out / "hosts.yml").write_text(hosts_yml(hosts, hosts))
    (out / "tenants.tno.yml").write_text("plugin: tno_tenants\n")
    platform = {"tno_platform_name": "bench", "tno_office_version": "24.04.10.1",
                "tno_office_apt_repo_url": "http://198.18.0.1:8081", "tno_office_apt_suite": "tno-lab",
                "tno_office_apt_components": ["main"], "tno_office_apt_keyring_src": "/nonexistent/keyring.gpg",
                "tno_tls_cert_dir": "/nonexistent/certs", "tno_backup_host": "backup01"}
    (out / "group_vars" / "all" / "platform.yml").write_text(yamlio.dump(platform))
    used: set[str] = set()
    boxes = 0
    names: list[list[str]] = []
    slugs: list[str] = []
    for i in range(tenants):
        doc = tenant(rng, i, used, canary, hosts)
        boxes += len(doc["mailboxes"])
        if vault_tenants or layout == "split":
            names.append(secrets_of(doc))
            slugs.append(doc["slug"])
        (out / "tenants" / f"{doc['slug']}.yml").write_text(yamlio.dump(doc))
    print(f"wrote {tenants} tenants ({boxes} mailboxes) and {2 * hosts + 10} hosts into {out}", flush=True)
    if layout == "split":
        count, seconds = write_split_vault(out, rng, list(zip(slugs, names, strict=True)), hosts)
        print(f"wrote split vault: {count} secrets in {tenants} whole-file encrypted vault/<slug>.yml "
              f"(+ vault.yml: platform), {seconds:.1f} s", flush=True)
    elif vault_tenants:
        count, real, seconds = write_vault(out, rng, names, min(vault_tenants, tenants), hosts)
        size = (out / "group_vars" / "all" / "vault.yml").stat().st_size / 2**20
        print(f"wrote vault: {count} secrets ({real} encrypted one by one, {min(vault_tenants, tenants)} tenants), "
              f"{size:.1f} MiB, {seconds:.1f} s", flush=True)


def smoke() -> int:
    """Tiny inventories with a vault (inline, then split); prove the product loads them and decrypts a value."""
    from tnoctl.config.load import load_inventory
    from tnoctl.config.vault import decrypt_value
    from tnoctl.errors import InvalidInput

    with tempfile.TemporaryDirectory(prefix="tno-bench-gen-") as tmp:
        for name, layout in (("inv", "inline"), ("split", "split")):
            out = Path(tmp) / name
            generate(out, 6, 1, 3, layout=layout)
            try:
                inv = load_inventory(out, out / "vault-password")
            except InvalidInput as exc:  # the generator writes something the schema rejects
                print(f"smoke: {exc}: " + "; ".join(exc.details), file=sys.stderr)
                return 1
            first = inv.tenants[0].mailboxes[0].password_vault
            ok = bool(decrypt_value(out, out / "vault-password", first))  # the value itself is never printed
            print(f"smoke: {len(inv.tenants)} tenants load and validate ({layout} vault); vault value decrypts: {ok}")
    return 0


def main() -> int:
    """Generate the inventory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vault-tenants", type=int, default=0, metavar="N",
                        help="write vault.yml; encrypt the secrets of the first N tenants one by one (see above)")
    parser.add_argument("--hosts", type=int, default=20, help="mail hosts and office/proxy hosts (each; <= 50)")
    parser.add_argument("--vault-layout", choices=["inline", "split"], default="inline",
                        help="split: one whole-file encrypted vault/<slug>.yml per tenant, every value real")
    parser.add_argument("--canary", action="store_true",
                        help="give every tenant a `canary` mailbox (the probes' login, as bench/exporter.py needs)")
    parser.add_argument("--smoke", action="store_true", help="6 tenants in a temp dir, loaded back (seconds)")
    args = parser.parse_args()
    if args.smoke:
        return smoke()
    if args.tenants is None or args.out is None:
        parser.error("--tenants and --out are required (or --smoke)")
    generate(args.out, args.tenants, args.seed, args.vault_tenants, args.canary, args.vault_layout, args.hosts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
