"""Types the pure planners return: one playbook invocation is a :class:`PlaybookCall`.

Plans are data: tnoctl/plan/* build these values and tnoctl/run/ansible.py executes them, so the
plan layer never imports the run layer (an import-linter contract checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PlaybookCall:
    """One ansible-playbook invocation, as produced by the pure planners in tnoctl/plan/."""

    playbook: str  # file name under playbooks/ (or an absolute path, for tests)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    limit: tuple[str, ...] = ()  # host names; empty = every host the playbook targets
    tags: tuple[str, ...] = ()
    check: bool = False
    diff: bool = False
    force_handlers: bool = True  # a failed run must not lose notified handlers (recipe failure 5)
