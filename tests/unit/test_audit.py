"""The audit log: one record per operation, results from exceptions, append-only under concurrency,
tolerant of a truncated last line, and never holding a planted secret."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat

import pytest

from tnoctl.errors import ExitCode, InvalidInput, Locked, OperationFailed, Refused
from tnoctl.state import audit
from tnoctl.state.redact import SecretRegistry

SECRET = "Planted-Secret-7c41e0"
FIELDS = [
    "time", "id", "operator", "from_host", "verb", "args", "tenants", "hosts",
    "result", "exit_code", "duration_seconds", "artifacts", "details",
]  # fmt: skip


def test_operation_writes_one_complete_record(tmp_path, monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")
    with audit.operation(tmp_path, "deploy", ["deploy", "--tenant", "givors"], tenants=["givors"]) as op:
        op.artifacts = "/var/tmp/run-1"
        op.details["changed"] = 3
    [rec] = audit.read(tmp_path)
    assert list(rec) == FIELDS
    assert rec["operator"] == "alice"
    assert rec["verb"] == "deploy" and rec["tenants"] == ["givors"] and rec["hosts"] == []
    assert rec["result"] == "ok" and rec["exit_code"] == 0
    assert rec["artifacts"] == "/var/tmp/run-1" and rec["details"] == {"changed": 3}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec["time"])
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", rec["id"]) and rec["id"] == op.id
    assert rec["duration_seconds"] >= 0
    assert stat.S_IMODE(os.stat(audit.audit_path(tmp_path)).st_mode) == 0o600


@pytest.mark.parametrize(
    ("exc", "result", "code"),
    [
        (OperationFailed("boom"), "failed", ExitCode.FAILED),
        (InvalidInput("bad"), "invalid", ExitCode.INVALID),
        (Locked("held"), "locked", ExitCode.LOCKED),
        (Refused("window"), "refused", ExitCode.REFUSED),
        (KeyboardInterrupt(), "interrupted", ExitCode.INTERRUPTED),
        (RuntimeError("bug"), "failed", ExitCode.FAILED),
    ],
)
def test_result_comes_from_the_exception_which_propagates(tmp_path, exc, result, code):
    with pytest.raises(type(exc)), audit.operation(tmp_path, "upgrade", ["upgrade"]):
        raise exc
    [rec] = audit.read(tmp_path)
    assert (rec["result"], rec["exit_code"]) == (result, int(code))
    assert rec["details"]["error"]


def test_partial_failure_without_exception(tmp_path):
    with audit.operation(tmp_path, "backup", ["backup"], tenants=["b", "a", "b"]) as op:
        op.fail(1, "corbas failed")
    with audit.operation(tmp_path, "backup", ["backup"]) as op:
        op.result = "refused"
    first, second = audit.read(tmp_path)
    assert (first["result"], first["exit_code"]) == ("failed", 1)
    assert first["details"] == {"error": "corbas failed"}
    assert first["tenants"] == ["a", "b"]
    assert (second["result"], second["exit_code"]) == ("refused", int(ExitCode.REFUSED))


def test_planted_secret_never_reaches_the_file(tmp_path):
    reg = SecretRegistry()
    reg.add(SECRET)  # as the vault loader would
    argv = ["deploy", "--password", SECRET, f"--token={SECRET}", f"note={SECRET}", f"x{SECRET}y"]
    with pytest.raises(OperationFailed), audit.operation(tmp_path, "deploy", argv, registry=reg) as op:
        op.details["stdout"] = f"mysql -p{SECRET} failed"
        op.details[f"key-{SECRET}"] = [SECRET, {"nested": SECRET}]
        op.artifacts = f"/tmp/{SECRET}"
        raise OperationFailed(f"login with {SECRET} refused")
    raw = audit.audit_path(tmp_path).read_bytes()
    assert SECRET.encode() not in raw
    assert SECRET.encode("utf-16-le") not in raw
    [rec] = audit.read(tmp_path)
    assert rec["args"][:3] == ["deploy", "--password", "********"]
    assert "********" in rec["details"]["error"]


def test_secret_option_masked_even_when_unregistered(tmp_path):
    argv = ["deploy", "--vault-password", SECRET]
    with audit.operation(tmp_path, "deploy", argv, registry=SecretRegistry()):
        pass
    assert SECRET.encode() not in audit.audit_path(tmp_path).read_bytes()


def test_truncated_last_line_is_skipped_and_next_append_starts_fresh(tmp_path, caplog):
    for verb in ("a", "b"):
        with audit.operation(tmp_path, verb, [verb]):
            pass
    with open(audit.audit_path(tmp_path), "ab") as fh:
        fh.write(b'{"time": "2026-11-29T15:3')  # a writer died mid-record
    found = audit.read_log(tmp_path)
    assert [r["verb"] for r in found.records] == ["a", "b"] and found.skipped == 1
    with audit.operation(tmp_path, "c", ["c"]):
        pass
    with caplog.at_level("WARNING"):
        records = audit.read(tmp_path)
    assert [r["verb"] for r in records] == ["a", "b", "c"]
    assert "skipped 1 unreadable line" in caplog.text


def test_read_filters_by_tenant_and_limits_to_the_most_recent(tmp_path):
    for i, tenants in enumerate([["givors"], ["corbas"], ["givors", "corbas"], ["givors"]]):
        with audit.operation(tmp_path, f"v{i}", [], tenants=tenants):
            pass
    assert [r["verb"] for r in audit.read(tmp_path, tenant="givors")] == ["v0", "v2", "v3"]
    assert [r["verb"] for r in audit.read(tmp_path, tenant="givors", limit=2)] == ["v2", "v3"]
    assert [r["verb"] for r in audit.read(tmp_path, limit=0)] == ["v0", "v1", "v2", "v3"]
    assert audit.read(tmp_path / "missing") == []


def test_existing_file_is_only_appended_to(tmp_path):
    with audit.operation(tmp_path, "first", []):
        pass
    before = audit.audit_path(tmp_path).read_bytes()
    with audit.operation(tmp_path, "second", []):
        pass
    after = audit.audit_path(tmp_path).read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 2


WRITERS, RECORDS = 8, 150


def _writer(state_dir: str, writer: int) -> None:
    for seq in range(RECORDS):
        record = {"verb": "bench", "writer": writer, "seq": seq, "pad": "x" * (512 + 97 * seq)}
        audit.append(state_dir, record)


def test_concurrent_writers_never_interleave(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    assert [p.exitcode for p in procs] == [0] * WRITERS
    lines = audit.audit_path(tmp_path).read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]  # every line is valid JSON
    assert len(records) == WRITERS * RECORDS
    for w in range(WRITERS):
        assert sorted(r["seq"] for r in records if r["writer"] == w) == list(range(RECORDS))


def test_short_secret_does_not_break_the_record_schema(tmp_path):
    reg = SecretRegistry(["e"])
    with audit.operation(tmp_path, "deploy", ["deploy"], tenants=["givors"], registry=reg) as op:
        op.details["note"] = "everywhere"
    [rec] = audit.read(tmp_path)
    assert list(rec) == FIELDS
    assert b"e" not in b"".join(json.dumps(v).encode() for v in rec.values())
