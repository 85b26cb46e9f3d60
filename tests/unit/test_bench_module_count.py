"""bench/deploy_overhead.py counts remote module executions per host from a run's job events (issue 19)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from tnoctl import paths


def _bench() -> Any:
    path = paths.PROJECT_ROOT / "bench" / "deploy_overhead.py"
    spec = importlib.util.spec_from_file_location("deploy_overhead", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(events: Path, n: int, kind: str, host: str, action: str, res: dict | None = None) -> None:
    doc = {"event": kind, "event_data": {"host": host, "task_action": action, "res": res or {}}}
    (events / f"{n}-x.json").write_text(json.dumps(doc))


def test_counts_modules_items_and_two_for_template_not_controller_actions(tmp_path: Path) -> None:
    events = tmp_path / "job_events"
    events.mkdir()
    _event(events, 1, "runner_on_ok", "mail1", "ansible.builtin.apt")
    _event(events, 2, "runner_on_ok", "mail1", "ansible.builtin.set_fact")  # controller only
    _event(events, 3, "runner_on_ok", "mail1", "ansible.builtin.template")  # stat + file
    _event(events, 4, "runner_item_on_ok", "mail1", "ansible.builtin.systemd_service")
    _event(events, 5, "runner_item_on_ok", "mail1", "ansible.builtin.systemd_service")
    _event(events, 6, "runner_on_ok", "mail1", "ansible.builtin.systemd_service", {"results": [{}, {}]})  # summary
    _event(events, 7, "runner_on_ok", "office1", "tno_files")
    _event(events, 8, "runner_on_skipped", "office1", "ansible.builtin.copy")
    _event(events, 9, "runner_on_ok", "office1", "ansible.builtin.meta")
    _event(events, 10, "runner_on_ok", "office1", "ansible.builtin.validate_argument_spec")  # role argument check
    assert _bench().module_executions(events) == {"mail1": 5, "office1": 1}
