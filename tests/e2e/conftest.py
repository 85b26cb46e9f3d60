"""End-to-end fixtures: the lab, brought up once per session (root), and down at the end.

`lab` is session-scoped: the first e2e test pays `lab up` (seconds with a cached base), every
other test reuses the running hosts, and the session ends with `lab.down()`, which tolerates a
lab that a test (test_zz_lab_recovery.py) already took down. The `fleet` fixture (the lab
communes deployed once) lives in fleet.py and is registered here.

The `egress_capture` runs tcpdump on the lab bridge from before `lab up` to the end of the session:
test_zxz_egress_capture.py reads it after every other test that uses the fleet has run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fleet import backups, fleet  # noqa: F401 - registers the session fixtures of tests/e2e/fleet.py

from tnoctl import paths
from tnoctl.lab.egress import Capture
from tnoctl.lab.lab import Lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every end-to-end test needs root and the lab: mark them so `-m "not root"` deselects them."""
    for item in items:
        if "/tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.root)
            item.add_marker(pytest.mark.lab)


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("end-to-end lab tests need root; run as root (CI does) or deselect them: -m 'not root'")


@pytest.fixture(scope="session")
def egress_capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    """tcpdump on the lab bridge for the whole session (tnoctl.lab.egress), started before `lab up`."""
    _require_root()
    capture = Capture(tmp_path_factory.mktemp("egress") / "lab-bridge.pcap")
    capture.start()
    yield capture
    capture.stop()


@pytest.fixture(scope="session")
def lab(egress_capture: Capture) -> Iterator[Lab]:
    """The running lab (tnoctl.lab.lab.Lab over inventories/lab); needs root."""
    _require_root()
    the_lab = Lab(paths.LAB_INVENTORY)
    try:
        the_lab.up()
    except BaseException:  # a half-booted lab is taken down: the next run starts clean, nothing keeps running
        the_lab.down()
        raise
    yield the_lab
    if os.environ.get("TNO_E2E_KEEP_LAB") == "1":  # developer convenience: iterate on a running fleet
        return
    the_lab.down()
