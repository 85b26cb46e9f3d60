"""When a tenant's scheduled backup drill runs: inside its maintenance window, at a per-tenant offset. Pure.

The drill (``tno-backup drill KEY``: borg check + restore test, tnoctl/hostagent/checks.py) reads the
repository and a scratch copy only, so it never interrupts a tenant; running it in the tenant's
window still keeps its disk and CPU load out of office hours. Tenants sharing a window are spread
by a deterministic offset (a hash of the slug, at most half the window and at most 2 h), so the
schedule is stable across deploys (no timer churn) and two tenants rarely start together.
The result is a systemd ``OnCalendar`` expression in the windows' time zone (Europe/Paris).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from tnoctl.config.window import DAYS, Window

DEFAULT_WINDOW = "Sun 02:00-05:00"  # tenants without a window: drilled on Sunday night
MAX_OFFSET_MINUTES = 120


def window_minutes(window: Window) -> int:
    """Length of the window in minutes (overnight windows run into the next day)."""
    start = window.start.hour * 60 + window.start.minute
    end = 24 * 60 if window.end.hour == 23 and window.end.minute == 59 and window.end.second == 59 else (
        window.end.hour * 60 + window.end.minute)
    return (end - start) % (24 * 60) or 24 * 60


def offset_minutes(slug: str, window: Window) -> int:
    """Deterministic per-tenant offset from the window's start, in [0, min(half the window, 2 h))."""
    span = max(1, min(window_minutes(window) // 2, MAX_OFFSET_MINUTES))
    return int(hashlib.sha256(slug.encode()).hexdigest(), 16) % span


def drill_on_calendar(slug: str, window_text: str | None) -> str:
    """systemd OnCalendar of the tenant's weekly drill: the first day of its window, start + offset."""
    window = Window.parse(window_text or DEFAULT_WINDOW)
    first = min(window.days, key=lambda d: (d - _first_listed(window)) % 7)
    base = datetime(2024, 1, 1 + first, window.start.hour, window.start.minute)  # 2024-01-01 is a Monday
    moment = base + timedelta(minutes=offset_minutes(slug, window))
    return f"{DAYS[moment.weekday()]} *-*-* {moment:%H:%M}:00 Europe/Paris"


def _first_listed(window: Window) -> int:
    """The day the window text names first ("Sat,Sun ..." -> Sat, "Fri-Mon ..." -> Fri)."""
    return DAYS.index(window.text[:3])
