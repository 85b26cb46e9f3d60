"""Maintenance windows: "Sun 02:00-05:00", "Mon-Fri 22:00-06:00", "Sat,Sun 01:00-04:00" (Europe/Paris).

A pure module: later guards (upgrade, restore) ask ``Window.parse(text).contains(now)`` before
touching a tenant. A window whose end is not after its start runs overnight: it opens on the listed
day and closes the next morning ("Fri 22:00-06:00" covers Friday 22:00 to Saturday 06:00). An end of
"24:00" means the end of the day ("Mon-Sun 00:00-24:00" is always open).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TIMEZONE = ZoneInfo("Europe/Paris")
_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_SPEC = rf"{_DAY}(?:-{_DAY})?"
_RE = re.compile(rf"^(?P<days>{_SPEC}(?:,{_SPEC})*) (?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)\Z")
SYNTAX_HINT = "not a window like 'Sun 02:00-05:00', 'Mon-Fri 22:00-06:00' or 'Sat,Sun 01:00-04:00'"


def _hhmm(text: str, end: bool = False) -> time:
    hours, minutes = int(text[:2]), int(text[3:])
    if end and (hours, minutes) == (24, 0):
        return time.max  # "...-24:00": until the end of the day
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text!r} is not a time of day")
    return time(hours, minutes)


def _expand(spec: str) -> set[int]:
    """'Mon-Fri' -> {0..4}; 'Fri-Mon' wraps over the week end -> {4, 5, 6, 0}."""
    first, _, last = spec.partition("-")
    start, stop = DAYS.index(first), DAYS.index(last or first)
    return {(start + i) % 7 for i in range((stop - start) % 7 + 1)}


@dataclass(frozen=True)
class Window:
    """Weekly window: the week days it opens on, and its local start and end times."""

    days: frozenset[int]
    start: time
    end: time
    text: str

    @classmethod
    def parse(cls, text: str) -> Window:
        """Parse the window syntax; raise ValueError with a human message when it is wrong."""
        match = _RE.fullmatch(text) if isinstance(text, str) and len(text) <= 200 else None
        if match is None:
            shown = text if isinstance(text, str) and len(text) <= 60 else f"{str(text)[:60]}..."
            raise ValueError(f"{shown!r} is {SYNTAX_HINT}")
        days: set[int] = set()
        for spec in match["days"].split(","):
            days |= _expand(spec)
        start, end = _hhmm(match["start"]), _hhmm(match["end"], end=True)
        if start == end:
            raise ValueError(f"{text!r} is an empty window (start equals end)")
        return cls(frozenset(days), start, end, text)

    @property
    def overnight(self) -> bool:
        """True when the window closes on the day after it opens."""
        return self.end < self.start

    def contains(self, moment: datetime) -> bool:
        """Is ``moment`` (aware, any zone; naive means Europe/Paris) inside the window?"""
        local = moment.replace(tzinfo=TIMEZONE) if moment.tzinfo is None else moment.astimezone(TIMEZONE)
        clock = local.time().replace(tzinfo=None)
        today = local.weekday()
        if not self.overnight:
            return today in self.days and self.start <= clock < self.end
        if today in self.days and clock >= self.start:
            return True
        yesterday = (local - timedelta(days=1)).weekday()
        return yesterday in self.days and clock < self.end
