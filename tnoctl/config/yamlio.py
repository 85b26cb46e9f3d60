"""Safe, bounded YAML reading for inventory files: regular files only, size cap, no aliases, no duplicates.

Every inventory file (hosts.yml, group_vars/all/*.yml, tenants/*.yml, the vault) is read by
:func:`read_file`, whose policy is:

- **Regular files only.** The path is ``stat``-ed first (following symlinks) and anything but a
  regular file (device, FIFO, socket, directory) is refused *before* it is opened: opening
  ``/dev/watchdog`` or a tape device has side effects, a FIFO would block. The file is then opened
  with ``O_NONBLOCK | O_NOCTTY`` (a FIFO swapped in meanwhile cannot block) and ``fstat``-ed: it must
  still be the same regular file (same device and inode), else it is refused.
- **Symlinks stay inside the inventory.** A symlink (of the file or of a directory on its path, such
  as ``tenants/``) is followed only when the final target lies inside the inventory directory
  (``root``, itself resolved): a shared tenant file linked from another tenant
  directory of the same checkout works, ``tenants/x.yml -> /etc/shadow`` is refused before any byte
  is read, so no foreign content can reach an error message.
- **Bounded read.** The size cap is checked on the ``fstat`` result before reading, and at most
  cap + 1 bytes are read (a file growing meanwhile is refused too).

Parsing uses the safe loader (libyaml when present) with two extra rules: YAML aliases are refused
(the "billion laughs" bomb is made of them) and a duplicate key in a mapping is an error naming the
key and both lines (YAML says keys are unique; PyYAML silently kept the last one).

Every failure becomes a :class:`YamlProblem` carrying a `line N: message` text, so callers can
report `tenants/x.yml: line 3: ...` and never leak a traceback or file content on hostile input.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

MAX_BYTES = 1024 * 1024
"""Inventory files larger than this are refused (a tenant file is a few KiB)."""

_BaseSafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SafeDumper: type = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class SafeLoader(_BaseSafeLoader):  # type: ignore[misc, valid-type]
    """The safe loader, refusing duplicate mapping keys (subclass it to add tags, e.g. `!vault`)."""

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # non-scalar keys are rejected later by the schema
                key = (key_node.tag, key_node.value)  # raw scalar: no second construction of each key
                first = seen.get(key)
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise ConstructorError(
                        None, None, f"duplicate key {_clean(repr(key_node.value), 60)} (first at line {first})",
                        key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class YamlProblem(Exception):
    """A file that cannot be read as one YAML mapping; ``where`` is 'line N' or '(file)'."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


def _clean(text: str, limit: int = 160) -> str:
    """One printable line: hostile bytes must not forge extra output lines."""
    text = " ".join(str(text).split())
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


def _kind_of_mode(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _inside(target: str, root: Path) -> bool:
    base = os.path.realpath(root)
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


def read_file(path: Path, *, root: Path | None = None, limit: int = MAX_BYTES, what: str = "file") -> bytes:
    """The bytes of a regular file under the policy above; YamlProblem('(file)', ...) otherwise.

    FileNotFoundError is passed through (callers decide whether a missing file is an error).
    ``root`` is the inventory directory; None only checks the file type and size.
    """
    try:
        if root is not None and not _inside(os.path.realpath(path), root):  # the file or a parent dir is a link
            raise YamlProblem("(file)", f"{what} is a symlink pointing outside the inventory (refused)")
        before = os.stat(path)
        if not stat.S_ISREG(before.st_mode):
            raise YamlProblem("(file)", f"{what} is {_kind_of_mode(before.st_mode)}, not a regular file")
        if before.st_size > limit:
            raise YamlProblem("(file)", f"{what} is {before.st_size} bytes, more than the {limit} allowed")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise YamlProblem("(file)", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev, before.st_ino):
            raise YamlProblem("(file)", f"{what} changed while being opened (refused)")
        if st.st_size > limit:
            raise YamlProblem("(file)", f"{what} is {st.st_size} bytes, more than the {limit} allowed")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:
            raise YamlProblem("(file)", f"{what} is more than the {limit} bytes allowed")
        return b"".join(chunks)
    except OSError as exc:
        raise YamlProblem("(file)", f"cannot read: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)


def _has_alias(data: bytes, loader: type) -> bool:
    """True when the document uses `*alias` (refused: the billion-laughs bomb uses them)."""
    if b"*" not in data:
        return False
    return any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(data, Loader=loader))


def loads(data: bytes, *, what: str = "file", loader: type = SafeLoader, limit: int = MAX_BYTES) -> Any:
    """Parse bytes as one YAML document; raise YamlProblem on anything unusual."""
    if len(data) > limit:
        raise YamlProblem("(file)", f"{what} is {len(data)} bytes, more than the {limit} allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlProblem("(file)", f"not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise YamlProblem("(file)", "contains NUL bytes (binary file?)")
    try:
        if _has_alias(data, loader):
            raise YamlProblem("(file)", "YAML aliases (*name) are not allowed in inventory files")
        return yaml.load(text, Loader=loader)  # SafeLoader/CSafeLoader subclasses only
    except YamlProblem:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        problem = exc.problem or exc.context
        prefix = "" if isinstance(exc, ConstructorError) and str(problem).startswith("duplicate key") else (
            "invalid YAML: ")
        raise YamlProblem(where, _clean(f"{prefix}{problem}")) from None
    except RecursionError:
        raise YamlProblem("(file)", "YAML nesting too deep") from None
    except Exception as exc:  # yaml constructors raise ValueError, OverflowError...
        raise YamlProblem("(file)", _clean(f"invalid YAML: {type(exc).__name__}: {exc}")) from None


def load_mapping(path: Path, *, what: str = "file", root: Path | None = None) -> dict[str, Any]:
    """Read ``path`` (under the policy of :func:`read_file`) as a YAML mapping; empty file -> {}."""
    try:
        data = read_file(path, root=root, what=what)
    except FileNotFoundError:
        raise YamlProblem("(file)", "cannot read: No such file or directory") from None
    doc = loads(data, what=what)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise YamlProblem("(document)", f"must be a mapping of keys, got a {_kind(doc)}")
    return doc


def _kind(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def dump(data: Any) -> str:
    """Block-style YAML, keys in the given order, unicode kept (tenant and inventory files)."""
    return yaml.dump(data, Dumper=SafeDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)
