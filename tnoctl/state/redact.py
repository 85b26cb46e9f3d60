"""Keep secrets out of everything tnoctl records: argv, audit details, free text.

Two complementary defences, because neither is enough alone:

* **by name** (:func:`redact_args`): values of options and ``KEY=VALUE`` words whose name looks
  secret (``--password``, ``--token``, ``--dkim-key``, ``tno_vault_x=...``) are masked even when
  tnoctl has never seen the value;
* **by value** (:class:`SecretRegistry`): actions register every secret they load (vault
  variables, generated passwords); any string written to the audit log is scrubbed of them,
  wherever it hides (an error message, a details dict, a URL).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

MASK = "********"

# Option names (without leading dashes) whose value is secret: the name *ends* with a secret word.
# Paths to secret files (``--vault-password-file``) are not secret and stay readable.
_SECRET_OPTION = re.compile(
    r"(?:^|[-_])(?:password|passwd|passphrase|pass|token|secret|credentials?|api[-_]?key|key)$",
    re.IGNORECASE,
)
_NOT_SECRET_SUFFIX = re.compile(r"[-_](?:file|path|dir|id|name)$", re.IGNORECASE)

# KEY=VALUE words (ansible extra-vars, env assignments): the key *contains* a secret word.
_SECRET_KEY = re.compile(
    r"(?:password|passwd|passphrase|secret|token|credential|vault|(?:^|[-_])key$|api[-_]?key|private)",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
# "key": "value" pairs inside a JSON word (``--extra-vars '{"tno_vault_x": "..."}'``).
_JSON_PAIR = re.compile(r'"(?P<key>[^"\\]{1,200})"\s*:\s*"(?P<value>(?:[^"\\]|\\.)*)"')


def is_secret_option(name: str) -> bool:
    """True when option ``name`` (e.g. ``--vault-password``, ``-p`` excluded) carries a secret value."""
    bare = name.lstrip("-")
    if not bare or _NOT_SECRET_SUFFIX.search(bare):
        return False
    return bool(_SECRET_OPTION.search(bare))


def is_secret_key(key: str) -> bool:
    """True when a ``KEY=VALUE`` word's key names a secret (``password``, ``tno_vault_x``, ``API_KEY``)."""
    if _NOT_SECRET_SUFFIX.search(key):
        return False
    return bool(_SECRET_KEY.search(key))


def _redact_word(word: str) -> str:
    """Mask the secret part of one argv word that carries its own value (``--x=v``, ``K=v``, URLs)."""
    if word.startswith("--") and "=" in word:
        name, _, value = word.partition("=")
        if is_secret_option(name) and value:
            return f"{name}={MASK}"
        return f"{name}={_redact_word(value)}" if value else word
    match = _KEY_VALUE.match(word)
    if match and is_secret_key(match.group(1)) and match.group(2):
        return f"{match.group(1)}={MASK}"
    word = _JSON_PAIR.sub(
        lambda m: f'"{m.group("key")}": "{MASK}"' if is_secret_key(m.group("key")) else m.group(0), word
    )
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{MASK}@", word)


def redact_args(argv: Sequence[str], secrets: Iterable[str] = ()) -> list[str]:
    """Return a copy of ``argv`` with secret option values masked (and known ``secrets`` scrubbed).

    ``--password X`` masks the *next* word whatever it looks like: a password may start with
    a dash, and masking a following flag by mistake loses little, while leaking a secret loses all.
    """
    known = _usable(secrets)
    out: list[str] = []
    mask_next = False
    for word in argv:
        word = str(word)
        if mask_next:
            out.append(MASK)
            mask_next = False
            continue
        if word.startswith("-") and "=" not in word and is_secret_option(word):
            out.append(word)
            mask_next = True
            continue
        out.append(redact_text(_redact_word(word), known))
    return out


def _usable(secrets: Iterable[str]) -> list[str]:
    """Distinct non-empty secrets, longest first (so a secret containing another is masked whole)."""
    return sorted({s for s in secrets if isinstance(s, str) and s}, key=len, reverse=True)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each known secret value in ``text`` with ``********``."""
    for secret in _usable(secrets):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


_KEY = 8
"""Length of the prefix :class:`SecretMatcher` indexes secrets by (shorter ones are replaced one by one)."""
MATCHER_MIN = 64
"""From this many secrets on, the registry scrubs with a :class:`SecretMatcher` (a plain loop below)."""


class SecretMatcher:
    """Masks many known secrets in one pass over a text.

    Why (issue 18): a deploy of a mail host carrying 700 communes registers ~36,000 values, and the
    audit log scrubs every string of a record: testing each secret against each string (and sorting
    them per string) took longer than the rest of the plan. Secrets are indexed by their first
    :data:`_KEY` characters, so a text costs one dict lookup per position, whatever the count;
    at a position the longest matching secret is masked (as the longest-first loop does).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        usable = _usable(secrets)
        self._short = [s for s in usable if len(s) < _KEY]
        self._index: dict[str, list[str]] = {}
        for secret in usable:  # longest first, kept per prefix
            if len(secret) >= _KEY:
                self._index.setdefault(secret[:_KEY], []).append(secret)

    def __call__(self, text: str) -> str:
        """``text`` with every secret masked."""
        if self._index and len(text) >= _KEY:
            text = self._mask_indexed(text)
        for secret in self._short:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def _mask_indexed(self, text: str) -> str:
        index, parts = self._index, []
        last = i = 0
        end = len(text) - _KEY
        while i <= end:
            found = index.get(text[i:i + _KEY])
            hit = next((s for s in found if text.startswith(s, i)), None) if found is not None else None
            if hit is None:
                i += 1
                continue
            parts += [text[last:i], MASK]
            i = last = i + len(hit)
        if not parts:
            return text
        parts.append(text[last:])
        return "".join(parts)


class SecretRegistry:
    """The secret values loaded during this run, so that anything recorded can be scrubbed of them.

    Actions call :meth:`add` for each secret they read (vault variables, generated passwords);
    the audit log scrubs every string of each record through :meth:`scrub` before writing.
    Thread-safe; values are never exposed except to the scrubbing code.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._matcher: SecretMatcher | None = None  # built on first scrub after a change
        self.add_all(values)

    def add(self, value: str | None) -> None:
        """Register one secret value (empty and non-string values are ignored)."""
        if isinstance(value, str) and value:
            with self._lock:
                self._values.add(value)
                self._matcher = None
                stripped = value.strip()
                if stripped and stripped != value:  # files often end with a newline
                    self._values.add(stripped)

    def add_all(self, values: Iterable[str]) -> None:
        """Register several secret values."""
        for value in values:
            self.add(value)

    def clear(self) -> None:
        """Forget every registered value (tests, or a long-lived process between runs)."""
        with self._lock:
            self._values.clear()
            self._matcher = None

    def __len__(self) -> int:
        return len(self._values)

    def snapshot(self) -> list[str]:
        """The registered values (for :func:`redact_args` / :func:`redact_text`); do not log them."""
        with self._lock:
            return list(self._values)

    def _masker(self) -> Callable[[str], str]:
        """The text scrubber for the current values: a :class:`SecretMatcher` for many, else the loop."""
        with self._lock:
            if len(self._values) < MATCHER_MIN:
                usable = _usable(self._values)
                return lambda text: redact_text(text, usable)
            if self._matcher is None:
                self._matcher = SecretMatcher(self._values)
            return self._matcher

    def scrub_text(self, text: str) -> str:
        """``text`` with every registered secret masked."""
        return self._masker()(text)

    def scrub(self, value: Any) -> Any:
        """A JSON-ready copy of ``value`` (dicts, lists, scalars) with every string scrubbed.

        Keys are scrubbed too; values that are not JSON types are rendered with ``str()`` first,
        so nothing reaches the serializer without passing through the scrubber.
        """
        return _scrub(value, self._masker())


def _scrub(value: Any, mask: Callable[[str], str]) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask(str(k)): _scrub(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, mask) for v in value]
    return mask(str(value))


SECRETS = SecretRegistry()
"""Process-wide registry: the vault loader and actions feed it; the audit log reads it."""
