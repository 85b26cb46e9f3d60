"""Test modules have unique basenames: tests/ has no packages, so pytest imports each file by its name.

Two files named alike (say tests/unit/test_x.py and tests/e2e/test_x.py) make collection of the whole
suite fail with "import file mismatch", while each directory alone still passes: only `make test`,
which collects everything at once, would notice.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_basenames_are_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("*.py") if path.name != "__init__.py")
    assert [name for name, count in names.items() if count > 1] == []
