"""Loading the roles' host-side scripts (roles/*/files/*.py) as modules, and reading what they expose.

The scripts run on the hosts with the standard library only, so they are not importable package
modules; the unit tests load them from their file. One loader (registered in ``sys.modules``, which
dataclasses need to look their module up) and one reader of Prometheus text for every such test.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def load_script(path: Path, name: str) -> ModuleType:
    """The script at ``path`` imported as module ``name`` (registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def exposition_samples(text: str) -> Samples:
    """Every sample of a Prometheus exposition text: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
