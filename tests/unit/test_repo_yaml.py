"""Every YAML file the repository ships loads with PyYAML's pure-Python SafeLoader.

libyaml (CSafeLoader) is more lenient than the pure-Python loader, yamllint and ansible-lint: a flow
mapping with an unquoted ``?`` in a value parses with one and not the others. Operators read and
edit these files with all kinds of tools, so the strictest common loader is the bar.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


class _PureSafeLoader(yaml.SafeLoader):
    """The pure-Python safe loader, plus ansible-vault's ``!vault`` tag (inline encrypted values)."""


_PureSafeLoader.add_constructor("!vault", lambda loader, node: loader.construct_scalar(node))


def _yaml_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "*.yml", "*.yaml"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return sorted(out.split())


def test_the_repository_has_yaml_files() -> None:
    assert len(_yaml_files()) > 50


@pytest.mark.parametrize("name", _yaml_files())
def test_yaml_file_loads_with_the_pure_python_safe_loader(name: str) -> None:
    with open(ROOT / name, encoding="utf-8") as fh:
        list(yaml.load_all(fh, Loader=_PureSafeLoader))
