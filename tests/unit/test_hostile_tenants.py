"""Hostile tenant files never crash `inventory validate`: always exit 2 with a `tenants/<file>: <field>:` line.

Hypothesis generates >= 1000 files: wrong types, huge strings, unicode, shell and path tricks,
nested junk, raw bytes, YAML aliases. One temporary inventory is reused (fast), the file is
rewritten for each example.
"""

import io
import re
import shutil
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tnoctl.cli import main
from tnoctl.cli.context import AppContext

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"
def _dump(value) -> str:
    return yaml.dump(value, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), allow_unicode=True)


KEYS = ["slug", "name", "insee", "domains", "services", "placement", "mailboxes", "office", "maintenance_window",
        "pilot", "contacts", "backup", "local", "quota", "password_vault", "wopi_hosts", "mail"]
NASTY = ["a;rm -rf /", "../../etc", "../../../etc/passwd", "$(reboot)", "`id`", "\x00\x01\x1b[2J", "é" * 300,
         "💣" * 50, "tno_vault_x\nroot: true", "-1", "1e999", "0x1F", "2A004", "", " ", "null",
         "https://evil\n.test", "C:\\Windows", "%s%s%n", "{{ lookup('pipe', 'id') }}"]
huge = st.integers(1000, 50_000).map(lambda n: "A" * n)
scalars = st.one_of(st.sampled_from(NASTY), huge, st.text(max_size=60), st.integers(), st.floats(allow_nan=True),
                    st.booleans(), st.none(), st.binary(max_size=20).map(lambda b: b.decode("latin-1")))
junk = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10), st.integers()), inner, max_size=4)),
    max_leaves=12)
bad_slug = st.one_of(st.sampled_from(NASTY), st.integers(), st.lists(scalars, max_size=2), st.none())
tenant_like = st.fixed_dictionaries({"slug": bad_slug}, optional={k: junk for k in KEYS if k != "slug"}).map(
    lambda d: _dump(d).encode("utf-8", "surrogatepass"))
documents = st.one_of(
    tenant_like,
    junk.map(lambda v: _dump(v).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.integers(1024 * 1024 + 1, 1024 * 1024 + 100).map(lambda n: b"a: " + b"A" * n),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"a: &a [1, 2]\nb: [*a, *a, *a]\n", b"- - - - - - - - []\n" * 3, b"[" * 5000,
                     b"slug: !!python/object/apply:os.system ['id']\n", b"? [a]\n: b\n", b"x: 1" + b"0" * 6000,
                     b"\xff\xfe\x00s", b"slug: x\nslug: y\n", b"{" * 200 + b"}" * 200]),
)
LINE = re.compile(r"^  tenants/hostile\.yml: \S.*?: \S", re.MULTILINE)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=documents)
def test_hostile_tenant_file_gives_exit_2_and_a_file_field_message(data):
    inv = _INV["path"]
    (inv / "tenants" / "hostile.yml").write_bytes(data)
    app = AppContext(inventory=inv, state_dir_override=inv.parent / "state", stdout=io.StringIO(),
                     stderr=io.StringIO())
    rc = main(["--inventory", str(inv), "inventory", "validate"], app=app)
    err = app.stderr.getvalue()
    assert rc == 2, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert LINE.search(err), err
    assert all(line.isprintable() for line in err.splitlines()), err


_INV: dict[str, Path] = {}


def setup_module(module):
    """One inventory for all examples (a copy of the lab without its vault password: faster)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="tno-hostile-"))
    shutil.copytree(LAB, root / "inv", ignore=shutil.ignore_patterns(".tno", "vault-password"))
    _INV["path"] = root / "inv"


def teardown_module(module):
    shutil.rmtree(_INV["path"].parent, ignore_errors=True)
