"""The opt-in execution strategy (run/strategy.py): Ansible's linear by default, Mitogen on request."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from tnoctl.errors import InvalidInput
from tnoctl.run import strategy
from tnoctl.run.ansible import write_ansible_cfg


def _defaults(cfg: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(cfg)
    return parser["defaults"]


def test_default_is_ansibles_linear_strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(strategy.ENV, raising=False)
    assert strategy.chosen() == "linear"
    assert strategy.chosen({strategy.ENV: "  "}) == "linear"
    defaults = _defaults(write_ansible_cfg(tmp_path, tmp_path / "state"))
    assert "strategy" not in defaults and "strategy_plugins" not in defaults
    assert defaults["forks"] == "20"


def test_mitogen_names_its_strategy_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(strategy.ENV, "mitogen")
    defaults = _defaults(write_ansible_cfg(tmp_path, tmp_path / "state"))
    assert defaults["strategy"] == "mitogen_linear"
    assert (Path(defaults["strategy_plugins"]) / "mitogen_linear.py").is_file()
    assert "pipelining = True" in (tmp_path / "ansible.cfg").read_text()  # the rest of the tuning is kept


def test_explicit_strategy_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(strategy.ENV, "mitogen")
    assert "strategy" not in _defaults(write_ansible_cfg(tmp_path, tmp_path / "state", strategy="linear"))


def test_unknown_strategy_is_one_line_naming_the_variable() -> None:
    with pytest.raises(InvalidInput) as exc:
        strategy.chosen({strategy.ENV: "free\x1b[31m" + "x" * 100})
    message = str(exc.value)
    assert message.startswith("$TNO_ANSIBLE_STRATEGY: must be one of linear, mitogen")
    assert "\n" not in message and len(message) < 160


def test_mitogen_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategy.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InvalidInput, match=r"mitogen package is not installed .*tnoctl\[mitogen\]"):
        strategy.cfg_lines("mitogen")
