"""borg's JSON comes from a network peer (the backup host): bad output is a failed command, never a traceback."""

from __future__ import annotations

import json

import pytest

from tnoctl.backup import borg
from tnoctl.errors import OperationFailed


@pytest.mark.parametrize("text", ["", "   \n", "not json", "[1, 2]", "5", '{"archives": 5}',
                                  '{"archives": [3]}', '{"archives": [{"start": "x"}]}'])
@pytest.mark.parametrize("parse", [borg.parse_info, borg.parse_list])
def test_bad_output_is_operation_failed(parse, text: str) -> None:
    with pytest.raises(OperationFailed, match="borg"):
        parse(text)


def test_hostile_sizes_are_dropped_not_trusted() -> None:
    doc = {"archives": [{"name": "a", "start": "2026-01-01T00:00:00", "duration": "long",
                         "stats": {"original_size": "huge", "compressed_size": -1, "deduplicated_size": True,
                                   "nfiles": 12}},
                        {"name": "b", "start": "2026-01-02T00:00:00", "stats": "none"}]}
    first, second = borg.parse_info(json.dumps(doc))
    sizes = (first.original_bytes, first.compressed_bytes, first.deduplicated_bytes, first.files)
    assert sizes == (None, None, None, 12)
    assert first.duration_seconds is None and second.original_bytes is None


def test_borgmatic_list_wrapper_and_empty_list() -> None:
    assert borg.parse_list("[]") == []
    assert [a.name for a in borg.parse_list(json.dumps([{"archives": [{"name": "x", "time": "t"}]}]))] == ["x"]
