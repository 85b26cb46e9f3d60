"""Ctrl-C during a real playbook run: the run is cancelled, KeyboardInterrupt reaches main() (exit 130).

Before, ansible-runner's own SIGINT handler turned Ctrl-C into a "canceled" run (exit 1) and stayed
installed, so the next Ctrl-C of the process did nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tnoctl.plan.calls import PlaybookCall
from tnoctl.run.ansible import run_playbook

pytestmark = pytest.mark.integration

SLEEPER = """\
- name: Sleep
  hosts: all
  gather_facts: false
  tasks:
    - name: Sleep long
      ansible.builtin.command: sleep 60
      changed_when: false
"""


def test_sigint_cancels_the_playbook_and_raises_keyboard_interrupt(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(f"all:\n  hosts:\n    here: {{ansible_connection: local, "
                         f"ansible_python_interpreter: {sys.executable}}}\n")
    playbook = tmp_path / "sleep.yml"
    playbook.write_text(SLEEPER)
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_playbook(PlaybookCall(playbook=str(playbook)), inventory=inventory, state_dir=tmp_path / "state",
                         run_id="int1")
    finally:
        timer.cancel()
    assert time.monotonic() - started < 40, "the playbook was not cancelled"
    assert signal.getsignal(signal.SIGINT) is before  # our handler is restored: the next Ctrl-C works
