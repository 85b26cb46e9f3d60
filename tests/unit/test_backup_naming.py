"""Archive naming: scheduled, office and tagged snapshot archives of one tenant repository, exactly."""

from __future__ import annotations

import pytest

from tnoctl.backup import borg, naming


def test_archive_name_formats_per_kind() -> None:
    assert naming.archive_name_format("givors") == "givors-{now:%Y-%m-%dT%H:%M:%S.%f}"
    assert naming.archive_name_format("givors", "office") == "givors.office-{now:%Y-%m-%dT%H:%M:%S.%f}"
    assert naming.archive_name_format("givors", tag="pre-upgrade-op42") == (
        "givors.tag-pre-upgrade-op42-{now:%Y-%m-%dT%H:%M:%S.%f}")
    assert naming.archive_base("vaulx-en-velin", "office", "pre-upgrade-7") == "vaulx-en-velin.office.tag-pre-upgrade-7"
    assert naming.unit_key("givors", "office") == "givors.office"
    assert naming.borgmatic_config("givors", "office") == "/etc/borgmatic.d/givors.office.yaml"
    with pytest.raises(ValueError):
        naming.unit_key("givors", "proxy")


@pytest.mark.parametrize("tag", ["", "a b", "x/y", "-lead", "é", "a" * 65, "a.b", "a'b"])
def test_bad_tags_are_refused(tag: str) -> None:
    with pytest.raises(ValueError):
        naming.check_tag(tag)


def test_globs_separate_the_kinds() -> None:
    import fnmatch

    names = {
        "mail": "vaulx-en-velin-2026-11-29T01:00:00.000001",
        "office": "vaulx-en-velin.office-2026-11-29T01:00:02.000001",
        "tag": "vaulx-en-velin.tag-pre-upgrade-op42-2026-11-29T01:00:03.000001",
        "office-tag": "vaulx-en-velin.office.tag-pre-upgrade-op42-2026-11-29T01:00:04.000001",
    }
    globs = {
        "mail": naming.archive_glob("vaulx-en-velin"),
        "office": naming.archive_glob("vaulx-en-velin", "office"),
        "tag": naming.archive_glob("vaulx-en-velin", tagged=True),
        "office-tag": naming.archive_glob("vaulx-en-velin", "office", tagged=True),
    }
    for kind, glob in globs.items():
        assert [k for k, n in names.items() if fnmatch.fnmatchcase(n, glob)] == [kind], glob


def test_parse_archive_and_component_filter() -> None:
    assert naming.parse_archive("g", "g-2026-11-29T01:00:00.000001") == ("mail", None)
    assert naming.parse_archive("g", "g.office-2026-11-29T01:00:00.000001") == ("office", None)
    assert naming.parse_archive("g", "g.tag-pre-upgrade-42-2026-11-29T01:00:00.000001") == ("mail", "pre-upgrade-42")
    assert naming.parse_archive("g", "g.office.tag-x-2026-11-29T01:00:00.5") == ("office", "x")
    assert naming.parse_archive("g", "raw-2026") is None
    assert naming.parse_archive("g", "g-sud-2026-11-29T01:00:00.1") is None  # another slug's prefix
    archives = [borg.Archive(n, t) for n, t in [
        ("g-2026-11-28T01:00:00.1", "2026-11-28T01:00:00"),
        ("g.office-2026-11-29T01:00:00.1", "2026-11-29T01:00:00"),
        ("g.tag-pre-upgrade-1-2026-11-29T02:00:00.1", "2026-11-29T02:00:00"),
    ]]
    mail = borg.of_component(archives, "g", "mail")
    assert [a.name for a in mail] == ["g-2026-11-28T01:00:00.1", "g.tag-pre-upgrade-1-2026-11-29T02:00:00.1"]
    assert borg.latest(borg.of_component(archives, "g", "office")).name == "g.office-2026-11-29T01:00:00.1"


def test_parse_paths_keeps_regular_files() -> None:
    text = ('{"type": "d", "path": "etc/coolwsd"}\n{"type": "-", "path": "etc/coolwsd/coolwsd.xml"}\n\n'
            '{"type": "-", "path": "etc/nginx/conf.d/tno-office.conf"}\n')
    assert borg.parse_paths(text) == ["etc/coolwsd/coolwsd.xml", "etc/nginx/conf.d/tno-office.conf"]


def test_client_borg_env_is_what_the_hosts_borgmatic_uses() -> None:
    """The tests' and benchmarks' client borg must talk to the repository as borgmatic does on the host."""
    from tnoctl import paths

    template = (paths.ROLES_DIR / "tno_backup" / "templates" / "borgmatic.yaml.j2").read_text()
    passcommand, rsh = naming.client_borg_env("givors")
    assert passcommand == "BORG_PASSCOMMAND=cat /etc/tno-backup/givors.passphrase"
    assert "encryption_passcommand: cat /etc/tno-backup/{{ key }}.passphrase" in template
    words = rsh.removeprefix("BORG_RSH=").split()
    assert words[:3] == ["ssh", "-i", "/etc/tno-backup/keys/givors"]
    for option in [words[i + 1] for i, w in enumerate(words) if w == "-o"]:
        assert f"-o {option}" in " ".join(template.split()), option
