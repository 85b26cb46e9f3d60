"""Untrusted strings are printed inert (#13): control characters escaped, never rich markup."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

from tnoctl.cli import main
from tnoctl.cli.context import AppContext, untrusted
from tnoctl.state import audit

LAB = Path(__file__).resolve().parents[2] / "inventories" / "lab"
EVIL = "x\x1b[2J\x1b]52;c;cm0gLXJmIC8=\x07\nFAKE LINE\u202e\x9b"


def _run(inv: Path, state: Path, *argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    app = AppContext(inventory=inv, state_dir_override=state, stdout=out, stderr=err)
    rc = main(["--inventory", str(inv), "--state-dir", str(state), *argv], app=app)
    return rc, out.getvalue() + err.getvalue()


def test_untrusted_escapes_control_and_format_characters() -> None:
    shown = untrusted(EVIL)
    assert shown.isprintable()
    assert "\\x1b[2J" in shown and "\\n" in shown and "\\u202e" in shown and "\\x9b" in shown
    assert untrusted("Vénissieux-Saint Genis") == "Vénissieux-Saint Genis"


def test_print_table_escapes_cells_and_ignores_markup() -> None:
    out = io.StringIO()
    AppContext(stdout=out).print_table(["a", "b"], [[EVIL, "[bold red]x[/bold red]"]])
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "FAKE LINE" in text
    assert "[bold red]x[/bold red]" in text


def test_history_escapes_audit_fields(tmp_path: Path) -> None:
    state = tmp_path / "state"
    record = {"time": "2026-01-01T00:00:00Z", "id": "op1", "operator": EVIL, "verb": "deploy",
              "tenants": [f"bron{EVIL}"], "result": "ok", "duration_seconds": 1}
    audit.audit_path(state).parent.mkdir(parents=True, exist_ok=True)
    audit.audit_path(state).write_text(json.dumps(record) + "\n")
    rc, text = _run(LAB, state, "history")
    assert rc == 0
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text


def test_tenant_list_and_show_print_markup_literally(tmp_path: Path) -> None:
    inv = tmp_path / "inv"
    shutil.copytree(LAB, inv, ignore=shutil.ignore_patterns(".tno"))
    path = inv / "tenants" / "givors.yml"
    path.write_text(path.read_text().replace("name: Givors", "name: '[link=https://evil.example]Givors[/link]'"))
    rc, text = _run(inv, tmp_path / "state", "tenant", "list")
    assert rc == 0 and "[link=https://evil.example]Givors[/link]" in text
    rc, text = _run(inv, tmp_path / "state", "tenant", "show", "givors")
    assert rc == 0 and "[link=https://evil.example]Givors[/link]" in text
