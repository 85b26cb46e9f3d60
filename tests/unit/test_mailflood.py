"""Pure parts of the no-mail-lost harness (tests/e2e/mailflood.py): tokens, tally, retry policy.

Why: the end-to-end verdict "every accepted message exactly once" is only as good as the counting;
these tests pin it down without a lab.
"""

from __future__ import annotations

import email
import smtplib
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import mailflood  # lives next to the end-to-end test that uses it

RUN = "0123456789ab"


def test_token_round_trip_and_rejects_foreign_text() -> None:
    token = mailflood.make_token(RUN, 42, 3)
    assert token == "0123456789ab.00042.3"
    assert mailflood.parse_token(token) == (RUN, 42, 3)
    for bad in ("", "bounce", "0123456789ab.42.3", "XYZ456789abc.00042.1", f"{token}x"):
        with pytest.raises(ValueError):
            mailflood.parse_token(bad)


def test_run_ids_are_tokens_prefixes() -> None:
    run = mailflood.new_run_id()
    assert mailflood.parse_token(mailflood.make_token(run, 0, 1))[0] == run
    assert mailflood.new_run_id() != run


@given(st.lists(st.tuples(st.integers(0, 99999), st.integers(1, 9)), unique=True, max_size=50))
def test_tokens_are_unique_per_seq_and_attempt(pairs: list[tuple[int, int]]) -> None:
    tokens = [mailflood.make_token(RUN, seq, attempt) for seq, attempt in pairs]
    assert len(set(tokens)) == len(pairs)
    assert [mailflood.parse_token(t)[1:] for t in tokens] == pairs


def test_tally_exactly_once() -> None:
    result = mailflood.tally(["a", "b"], ["b", "a"])
    assert result.exactly_once
    assert (result.accepted, result.found, result.missing, result.duplicated) == (2, 2, (), ())


def test_tally_finds_lost_duplicated_and_unacknowledged() -> None:
    result = mailflood.tally(["a", "b", "c"], ["a", "a", "c", "z"])
    assert result.missing == ("b",)
    assert result.duplicated == ("a",)
    assert result.unacknowledged == ("z",)
    assert result.found == 4
    assert not result.exactly_once


def test_unacknowledged_delivery_alone_is_not_a_loss() -> None:
    result = mailflood.tally(["a"], ["a", "a-retry-ghost"])
    assert result.exactly_once and result.unacknowledged == ("a-retry-ghost",)


@given(st.lists(st.sampled_from("abcdef"), max_size=30), st.lists(st.sampled_from("abcdef"), max_size=30))
def test_tally_exactly_once_iff_each_accepted_found_once(accepted: list[str], found: list[str]) -> None:
    result = mailflood.tally(accepted, found)
    expected = all(found.count(t) == 1 for t in set(accepted)) and all(found.count(t) <= 1 for t in found)
    assert result.exactly_once == expected


@pytest.mark.parametrize(
    ("exc", "retry", "kind"),
    [
        (ConnectionRefusedError(), True, "ConnectionRefusedError"),
        (smtplib.SMTPServerDisconnected("gone"), True, "SMTPServerDisconnected"),
        (smtplib.SMTPAuthenticationError(454, b"Temporary authentication failure"), True, "smtp 454"),
        (smtplib.SMTPDataError(451, b"try again"), True, "smtp 451"),
        (smtplib.SMTPRecipientsRefused({"x@y": (450, b"busy")}), True, "smtp 450"),
        (smtplib.SMTPRecipientsRefused({"x@y": (550, b"no")}), False, "smtp 550"),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), False, "smtp 535"),
        (smtplib.SMTPSenderRefused(553, b"not owned", "x@y"), False, "smtp 553"),
        (ValueError("bug"), False, "ValueError"),
    ],
)
def test_retry_policy(exc: BaseException, retry: bool, kind: str) -> None:
    assert mailflood.retryable(exc) is retry
    assert mailflood.error_kind(exc) == kind


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [mailflood.backoff(n) for n in (1, 2, 3, 4, 5, 10)] == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def test_message_carries_token_and_hides_password() -> None:
    route = mailflood.Route(mailflood.Endpoint("198.18.0.11", "mail.a.test"), "mairie@a.test",
                            "s3cret-pw", "dgs@a.test")
    token = mailflood.make_token(RUN, 7, 1)
    parsed = email.message_from_bytes(mailflood.make_message(route, token))
    assert parsed[mailflood.HEADER] == token
    assert parsed["Message-ID"] == f"<{token}@a.test>"
    assert (parsed["From"], parsed["To"]) == ("mairie@a.test", "dgs@a.test")
    assert "s3cret-pw" not in repr(route)


def test_header_token_parsing_of_fetched_headers() -> None:
    assert mailflood._header_token(b"X-Tno-Flood: 0123456789ab.00001.2\r\n\r\n") == "0123456789ab.00001.2"
    assert mailflood._header_token(b"x-tno-flood:  tok\r\n") == "tok"
    assert mailflood._header_token(b"\r\n") == "bounce"


def test_sender_needs_routes() -> None:
    with pytest.raises(ValueError):
        mailflood.Sender(RUN, [], None, min_messages=1)  # type: ignore[arg-type]
