"""Which Ansible execution strategy a run uses: Ansible's own ``linear`` (the default) or Mitogen's.

Mitogen (https://mitogen.networkgenomics.com) keeps one Python interpreter per host alive for the
whole playbook and runs modules in it, instead of shipping and starting an AnsiballZ payload per task
(issue 19: 0.19-0.24 CPU-s per module execution, whatever the module does). It is an opt-in for the
operator of a controller, chosen with ``TNO_ANSIBLE_STRATEGY=mitogen`` and installed with
``pip install 'tnoctl[mitogen]'``; nothing in the roles or in tnoctl depends on it, and
bench/deploy_overhead.py measures both side by side. Host keys, the bastion (``ProxyJump`` in
``ansible_ssh_common_args``) and sudo are Ansible's connection settings: Mitogen's ``ssh`` and
``sudo`` methods read the same ones.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tnoctl.errors import InvalidInput

ENV = "TNO_ANSIBLE_STRATEGY"
STRATEGIES = ("linear", "mitogen")


def chosen(environ: dict[str, str] | None = None) -> str:
    """The strategy named by ``$TNO_ANSIBLE_STRATEGY`` (``linear`` when unset or empty)."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip() or "linear"
    if value not in STRATEGIES:
        raise InvalidInput(f"${ENV}: must be one of {', '.join(STRATEGIES)} (got {value[:40]!r})")
    return value


def mitogen_strategy_dir() -> Path:
    """The directory of Mitogen's Ansible strategy plugins (``mitogen_linear``), found without importing it."""
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInput(f"${ENV}=mitogen: the mitogen package is not installed in this environment "
                           "(pip install 'tnoctl[mitogen]', or unset it for Ansible's linear strategy)")
    return Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"


def cfg_lines(strategy: str) -> str:
    """The ``[defaults]`` lines that select ``strategy`` ('' for linear: Ansible's default)."""
    if strategy == "linear":
        return ""
    return f"strategy_plugins = {mitogen_strategy_dir()}\nstrategy = mitogen_linear\n"
