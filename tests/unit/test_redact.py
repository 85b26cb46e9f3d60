"""Secrets are masked by option name, by KEY=VALUE name, and by known value wherever they hide."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tnoctl.state.redact import MASK, SecretRegistry, is_secret_option, redact_args, redact_text

SECRET = "S3cr3t-Planted-9f2c"


def test_option_followed_by_value_is_masked():
    argv = ["deploy", "--password", SECRET, "--tenant", "givors"]
    assert redact_args(argv) == ["deploy", "--password", MASK, "--tenant", "givors"]


def test_option_equals_forms_are_masked():
    argv = [f"--{name}={SECRET}" for name in ("vault-password", "token", "dkim-key", "passphrase")]
    assert redact_args(argv) == [
        f"--vault-password={MASK}",
        f"--token={MASK}",
        f"--dkim-key={MASK}",
        f"--passphrase={MASK}",
    ]


def test_value_starting_with_dash_is_still_masked():
    assert redact_args(["--secret", "-x" + SECRET]) == ["--secret", MASK]


def test_paths_to_secret_files_stay_readable():
    argv = ["--vault-password-file", "/etc/tno/vault-pass", "--ssh-key-file=/root/.ssh/id"]
    assert redact_args(argv) == argv
    assert not is_secret_option("--vault-password-file")
    assert is_secret_option("--vault-password")
    assert is_secret_option("--api-key")


def test_key_value_words_are_masked_by_key():
    argv = ["-e", f"tno_vault_givors_alice={SECRET}", f"DB_PASSWORD={SECRET}", f"api_key={SECRET}"]
    argv.append("tenant=givors")
    assert redact_args(argv) == [
        "-e",
        f"tno_vault_givors_alice={MASK}",
        f"DB_PASSWORD={MASK}",
        f"api_key={MASK}",
        "tenant=givors",
    ]


def test_nested_forms_are_masked():
    out = redact_args(
        [
            f"--extra-vars=password={SECRET}",
            f'{{"tno_vault_x": "{SECRET}", "tenant": "givors"}}',
            f"https://admin:{SECRET}@repo.test/debian",
        ]
    )
    assert not any(SECRET in word for word in out)
    assert '"tenant": "givors"' in out[1]
    assert out[2] == f"https://admin:{MASK}@repo.test/debian"


def test_known_secret_values_are_scrubbed_from_any_word():
    out = redact_args(["--note", f"prefix{SECRET}suffix"], secrets=[SECRET])
    assert out == ["--note", f"prefix{MASK}suffix"]


def test_redact_text_masks_longest_first():
    assert redact_text("a=abcdef b=abc", ["abc", "abcdef"]) == f"a={MASK} b={MASK}"
    assert redact_text("nothing here", ["", "zzz"]) == "nothing here"


def test_registry_scrubs_nested_structures_keys_and_non_json_values():
    reg = SecretRegistry([SECRET + "\n"])  # as read from a file: stripped form registered too
    scrubbed = reg.scrub({"msg": f"login {SECRET} failed", SECRET: [1, (f"x{SECRET}",)], "n": 3, "p": object})
    text = repr(scrubbed)
    assert SECRET not in text
    assert scrubbed["n"] == 3
    assert scrubbed[MASK] == [1, [f"x{MASK}"]]


def test_registry_ignores_empty_and_non_strings():
    reg = SecretRegistry()
    reg.add("")
    reg.add(None)
    assert len(reg) == 0
    assert reg.scrub_text("unchanged") == "unchanged"


_secret = st.text(min_size=1, max_size=30).filter(lambda s: "*" not in s)


@given(secrets=st.lists(_secret, min_size=1, max_size=4), text=st.text(max_size=200), pos=st.integers(0, 200))
def test_registered_secrets_never_survive_scrubbing(secrets, text, pos):
    planted = text[:pos] + secrets[0] + text[pos:] + "".join(secrets)
    reg = SecretRegistry(secrets)
    out = reg.scrub([planted, {"k": planted}])
    for secret in secrets:
        assert secret not in out[0]
        assert secret not in next(iter(out[1].values()))


@given(secret=st.text(min_size=1, max_size=40), name=st.sampled_from(["--password", "--token", "--secret"]))
def test_secret_option_values_never_survive(secret, name):
    out = redact_args(["deploy", name, secret, f"{name}={secret}"])
    assert out == ["deploy", name, MASK, f"{name}={MASK}"]


def test_many_secrets_are_masked_in_one_pass_as_the_longest_first_loop_does():
    """Issue 18: a 700-commune deploy registers ~36,000 values; the registry then scrubs with an index."""
    import random

    from tnoctl.state.redact import MATCHER_MIN, SecretMatcher

    rng = random.Random(7)
    secrets = ["".join(rng.choice("abcdefXYZ0123") for _ in range(rng.randint(9, 30))) for _ in range(2000)]
    secrets += ["abcdefghij", "abcdefghijKLM", "short", "x1"]  # a secret prefixing another; two shorter than the key
    texts = [f"pw={secrets[i]} and {secrets[-3]} then {secrets[i + 1]}{secrets[-4]}!" for i in range(0, 200, 2)]
    texts += ["abcdefghijKLMN short x1 abcdefghij", "", "nothing here", "abcdefgh"]
    matcher = SecretMatcher(secrets)
    assert [matcher(t) for t in texts] == [redact_text(t, secrets) for t in texts]
    registry = SecretRegistry(secrets)
    assert len(registry) > MATCHER_MIN
    assert registry.scrub({"k": texts[0], secrets[5]: [texts[1]]}) == {
        "k": redact_text(texts[0], secrets), MASK: [redact_text(texts[1], secrets)]}
    registry.add("zzzzzzzzzzzz")  # a value added later is masked too (the index is rebuilt)
    assert registry.scrub_text("a zzzzzzzzzzzz b") == f"a {MASK} b"
