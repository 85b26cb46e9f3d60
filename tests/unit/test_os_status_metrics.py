"""The hosts' OS status textfile script (role tno_monitoring): pending updates by origin, reboot required."""

from __future__ import annotations

from hostscripts import exposition_samples, load_script

from tnoctl import paths

SCRIPT = paths.ROLES_DIR / "tno_monitoring" / "files" / "tno-os-status-metrics.py"
status = load_script(SCRIPT, "tno_os_status_metrics")

SIMULATION = """\
Inst libc6 [2.36-9+deb12u9] (2.36-9+deb12u10 Debian:12.11/stable, Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024b-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable-updates [all])
Inst newdep (1.0-1 Debian:12.11/stable [amd64])
Conf openssl (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
"""




def test_pending_updates_are_counted_by_origin_of_the_candidate() -> None:
    assert status.count_pending(SIMULATION) == {"security": 2, "other": 1}  # a new dependency is no upgrade


def test_render_is_valid_exposition_with_the_reboot_flag() -> None:
    samples = exposition_samples(status.render(True, {"security": 2, "other": 1}, 1764547200.0))
    assert samples == {
        ("tno_os_reboot_required", ()): 1.0,
        ("tno_os_upgrades_pending", (("origin", "other"),)): 1.0,
        ("tno_os_upgrades_pending", (("origin", "security"),)): 2.0,
        ("tno_os_status_last_run_timestamp_seconds", ()): 1764547200.0,
    }


def test_a_failed_apt_leaves_the_pending_gauge_out_rather_than_reporting_zero() -> None:
    samples = exposition_samples(status.render(False, None, 1.0))
    assert ("tno_os_reboot_required", ()) in samples
    assert not any(name == "tno_os_upgrades_pending" for name, _labels in samples)
