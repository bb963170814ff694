"""Business hours: when agents are at work, and service-level time that only runs while they are.

A schedule is written the way a support lead would say it, in the shop's time zone::

    mon-fri 09:00-18:00; sat 10:00-16:00

Days are `mon` … `sun`, alone, as ranges (`mon-fri`, `fri-mon` wraps) or comma lists; each part
gives one or more `HH:MM-HH:MM` ranges (`24:00` ends a day). Listed holidays (ISO dates) are closed
all day. An empty schedule means always open. A handoff's first-response target then counts only
open time: 30 minutes asked for at 17:50 on a Friday fall due at 09:20 on Monday.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import AutoresponderError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_MAX_DAYS_AHEAD = 400  # a schedule with no open time at all is refused before this matters


class ScheduleError(AutoresponderError):
    """A business-hours setting that cannot be read."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening times per weekday (minutes from midnight), a time zone and closed dates."""

    week: tuple[tuple[tuple[int, int], ...], ...] = ()  # seven entries, Monday first; empty: always open
    zone: dt.tzinfo = dt.UTC
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, spec: str, zone: str = "Asia/Shanghai", holidays: Iterable[str] = ()) -> BusinessHours:
        """Read a schedule such as "mon-fri 09:00-18:00; sat 10:00-16:00" (empty: always open)."""
        try:
            tz: dt.tzinfo = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"unknown time zone {zone!r} (use an IANA name such as Asia/Shanghai)") from exc
        try:
            closed = frozenset(dt.date.fromisoformat(d.strip()) for d in holidays if d.strip())
        except ValueError as exc:
            raise ScheduleError(f"holidays must be ISO dates (2026-10-01): {exc}") from exc
        if not spec.strip():
            return cls((), tz, closed)
        week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for part in (p.strip() for p in spec.replace("\n", ";").split(";")):
            if not part:
                continue
            days, _, ranges = part.partition(" ")
            if not ranges.strip():
                raise ScheduleError(f"{part!r}: give days then times, e.g. 'mon-fri 09:00-18:00'")
            for day in _days(days.lower()):
                for text in ranges.replace(",", " ").split():
                    week[day].append(_minutes(text, part))
        if not any(week):
            raise ScheduleError(f"{spec!r} opens at no time")
        return cls(tuple(tuple(sorted(r)) for r in week), tz, closed)

    @property
    def always_open(self) -> bool:
        """No schedule: agents are always there."""
        return not self.week

    def _ranges(self, day: dt.date) -> tuple[tuple[int, int], ...]:
        if day in self.holidays:
            return ()
        return self.week[day.weekday()]

    def is_open(self, at: float) -> bool:
        """Whether agents are at work at this time (a Unix timestamp)."""
        if self.always_open:
            return True
        local = dt.datetime.fromtimestamp(at, self.zone)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self._ranges(local.date()))

    def _spans(self, at: float) -> Iterable[tuple[float, float]]:
        """Open periods (start, end) as timestamps, from the one containing `at` on."""
        day = dt.datetime.fromtimestamp(at, self.zone).date()
        for _ in range(_MAX_DAYS_AHEAD):
            midnight = dt.datetime.combine(day, dt.time(), self.zone)
            for start, end in self._ranges(day):
                opens = (midnight + dt.timedelta(minutes=start)).timestamp()
                closes = (midnight + dt.timedelta(minutes=end)).timestamp()
                if closes > at:
                    yield max(opens, at), closes
            day += dt.timedelta(days=1)

    def next_open(self, at: float) -> float:
        """`at` itself when open, else when agents are next at work."""
        if self.always_open:
            return at
        for start, _ in self._spans(at):
            return start
        raise ScheduleError("the schedule has no open time in the next year (holidays?)")

    def add(self, at: float, seconds: float) -> float:
        """The time when `seconds` of open time have passed since `at` (a deadline in business time)."""
        if self.always_open:
            return at + seconds
        left = seconds
        for start, end in self._spans(at):
            if end - start >= left:
                return start + left
            left -= end - start
        raise ScheduleError("the schedule has no open time in the next year (holidays?)")

    def local(self, at: float) -> dt.datetime:
        """A timestamp in the schedule's time zone."""
        return dt.datetime.fromtimestamp(at, self.zone)


def _days(text: str) -> list[int]:
    out: list[int] = []
    for item in text.split(","):
        first, _, last = item.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ScheduleError(f"{item!r}: days are {', '.join(DAYS)} (ranges like mon-fri)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        out.extend((a + i) % 7 for i in range((b - a) % 7 + 1))
    return out


def _minutes(text: str, part: str) -> tuple[int, int]:
    m = _RANGE.match(text)
    if not m:
        raise ScheduleError(f"{part!r}: times are HH:MM-HH:MM, e.g. 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60 or end <= start:
        raise ScheduleError(f"{part!r}: {text} is not a range within one day")
    return start, end


_WEEKDAYS = {
    "zh-CN": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
    "zh-TW": ("週一", "週二", "週三", "週四", "週五", "週六", "週日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def opening_time(local: dt.datetime, locale: str) -> str:
    """A customer-facing time with its weekday and UTC offset: 11月30日（周一）09:00 (GMT+8)."""
    offset = local.utcoffset() or dt.timedelta()
    hours, rest = divmod(int(offset.total_seconds()) // 60, 60)
    zone = f"GMT{'+' if offset >= dt.timedelta() else '-'}{abs(hours)}" + (f":{rest:02d}" if rest else "")
    day = _WEEKDAYS.get(locale, _WEEKDAYS["zh-CN"])[local.weekday()]
    if locale == "en":
        return f"{day} {local.day} {local.strftime('%b')}, {local:%H:%M} ({zone})"
    return f"{local.month}月{local.day}日（{day}）{local:%H:%M}（{zone}）"
