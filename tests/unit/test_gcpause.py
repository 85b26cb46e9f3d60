"""config/gcpause.py: the collector is paused inside the block and restored after it, never left off."""

from __future__ import annotations

import gc

import pytest

from tnoctl.config import gcpause


def test_paused_turns_the_collector_off_and_back_on():
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
        with gcpause.paused():  # nested: the inner block does not switch it back on early
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_restores_on_error_and_keeps_an_off_collector_off():
    with pytest.raises(RuntimeError), gcpause.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
