#!/usr/bin/env python3
"""Write a synthetic inventory for scale tests: `bench/gen_inventory.py --tenants 35000 --out DIR`.

Realistic French commune names (built from common name parts), 1-3 domains and 5-200 mailboxes per
tenant (log-uniform: most communes are small), 50 hosts (20 mail, 20 office/proxy, 10 backup).
No vault file: password_vault names are not checked (that needs the vault password anyway).
Deterministic for a given --seed.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tnoctl.config import yamlio

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


def tenant(rng: random.Random, i: int, used: set[str]) -> dict:
    """One synthetic commune."""
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
    for n in range(count - 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = f"{first}.{last}{n}"
        box = {"local": local, "name": f"{first.title()} {last.title()}", "quota": rng.choice(["1G", "2G", "5G"]),
               "password_vault": f"tno_vault_{slug.replace('-', '_')}_{local.replace('.', '_')}"}
        if len(domains) > 1 and n % 7 == 0:
            box["domain"] = domains[1]
        boxes.append(box)
    mail, office = f"mail{1 + i % 20:02d}", f"office{1 + i % 20:02d}"
    return {"slug": slug, "name": name, "insee": f"{1 + i // 1000:02d}{i % 1000:03d}", "domains": domains,
            "services": ["mail", "office"], "placement": {"mail": mail, "office": office}, "mailboxes": boxes,
            "office": {"wopi_hosts": [f"https://cloud.{domains[0]}"]}, "maintenance_window": "Sun 02:00-05:00",
            "pilot": i % 50 == 0, "contacts": [{"name": "DSI", "email": f"dsi@{domains[0]}", "role": "dsi"}]}


def main() -> int:
    """Generate the inventory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    (args.out / "tenants").mkdir(parents=True, exist_ok=True)
    (args.out / "group_vars" / "all").mkdir(parents=True, exist_ok=True)
    (args.out / "hosts.yml").write_text(hosts_yml())
    (args.out / "tenants.tno.yml").write_text("plugin: tno_tenants\n")
    platform = {"tno_platform_name": "bench", "tno_office_version": "24.04.10.1",
                "tno_office_apt_repo_url": "http://198.18.0.1:8081", "tno_office_apt_suite": "tno-lab",
                "tno_office_apt_components": "main", "tno_office_apt_keyring_src": "/nonexistent/keyring.gpg",
                "tno_tls_cert_dir": "/nonexistent/certs", "tno_backup_host": "backup01"}
    (args.out / "group_vars" / "all" / "platform.yml").write_text(yamlio.dump(platform))
    used: set[str] = set()
    boxes = 0
    for i in range(args.tenants):
        doc = tenant(rng, i, used)
        boxes += len(doc["mailboxes"])
        (args.out / "tenants" / f"{doc['slug']}.yml").write_text(yamlio.dump(doc))
    print(f"wrote {args.tenants} tenants ({boxes} mailboxes) and 50 hosts into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
