"""tnoctl/run/labelled.py and the event collector: a labelled tno_files result becomes one change per
label, attributed to the tenant the label names by deploy.attribute_changes (plan and drift's rule)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tnoctl.actions.deploy import attribute_changes
from tnoctl.run.ansible import _EventCollector
from tnoctl.run.labelled import split_by_label


def _dir_diff(path: str) -> dict[str, Any]:
    return {"before_header": path, "after_header": path, "before": {"state": "absent"},
            "after": {"state": "directory", "mode": "0750"}}


RESULT = {
    "changed": True,
    "changed_labels": ["a.example", None],
    "files": [{"dest": "/srv/vmail", "label": None, "changed": True},
              {"dest": "/srv/vmail/a.example", "label": "a.example", "changed": True},
              {"dest": "/srv/vmail/b.example", "label": "b.example", "changed": False}],
    "diff": [_dir_diff("/srv/vmail"), _dir_diff("/srv/vmail/a.example")],
}


def test_split_gives_each_label_its_own_diff_entries() -> None:
    parts = dict(split_by_label(RESULT))
    assert list(parts) == ["a.example", None]
    assert parts["a.example"] == [_dir_diff("/srv/vmail/a.example")]
    assert parts[None] == [_dir_diff("/srv/vmail")]


def test_unlabelled_results_stay_one_change() -> None:
    plain = {"changed": True, "changed_labels": [None], "diff": {"before": "a", "after": "b"}}
    assert split_by_label(plain) == [(None, {"before": "a", "after": "b"})]
    assert split_by_label({"changed": True}) == [(None, None)]  # any other module


def _collect(res: dict[str, Any]) -> list[Any]:
    collector = _EventCollector(redact=lambda text: text.replace("secret", "****"), forward=None)
    collector.handle({"event": "runner_on_ok", "event_data": {"host": "mail1", "role": "tno_mail",
                                                             "task": "Create the directories", "res": res}})
    return collector.changed


def test_collector_makes_one_change_per_label_and_the_plan_rule_attributes_it() -> None:
    changes = _collect(RESULT)
    assert [(c.item, "/srv/vmail/a.example" in c.diff) for c in changes] == [("a.example", True), (None, False)]
    plan = SimpleNamespace(tenants_by_host={"mail1": ["bron", "givors"]})
    grouped = attribute_changes(plan, changes, {"bron": {"bron", "a.example"}, "givors": {"givors", "b.example"}})
    assert {owner: [c.item for c in items] for owner, items in grouped["mail1"].items()} == {
        "bron": ["a.example"], "(host)": [None]}


def test_no_log_result_stays_one_change_without_diff() -> None:
    hidden = {"changed": True, "_ansible_no_log": True, "censored": "hidden"}
    [change] = _collect(hidden)
    assert change.item is None and change.diff == ""
