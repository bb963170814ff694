"""Business hours: reading a schedule, open or closed, and deadlines that count only open time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.hours import BusinessHours, ScheduleError, opening_time

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = BusinessHours.parse("mon-fri 09:00-18:00; sat 10:00-12:00, 13:00-16:00", "Asia/Shanghai", ["2026-10-01"])
MINUTE = 60


def at(text: str) -> float:
    """A Shanghai wall-clock time as a timestamp."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI).timestamp()


def local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, SHANGHAI).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        ("2026-11-25 09:00", True),  # a Wednesday, at opening
        ("2026-11-25 17:59", True),
        ("2026-11-25 18:00", False),  # closing is exclusive
        ("2026-11-25 08:59", False),
        ("2026-11-28 12:30", False),  # Saturday's lunch break
        ("2026-11-28 13:30", True),
        ("2026-11-29 11:00", False),  # Sunday
        ("2026-10-01 11:00", False),  # a holiday on a Thursday
    ],
)
def test_open_or_closed(when: str, open_: bool) -> None:
    assert HOURS.is_open(at(when)) is open_


def test_next_opening() -> None:
    assert local(HOURS.next_open(at("2026-11-25 10:00"))) == "2026-11-25 10:00"  # open now
    assert local(HOURS.next_open(at("2026-11-25 20:00"))) == "2026-11-26 09:00"
    assert local(HOURS.next_open(at("2026-11-28 12:10"))) == "2026-11-28 13:00"
    assert local(HOURS.next_open(at("2026-11-28 17:00"))) == "2026-11-30 09:00"  # over Sunday
    assert local(HOURS.next_open(at("2026-09-30 19:00"))) == "2026-10-02 09:00"  # over the holiday


def test_deadlines_count_only_open_time() -> None:
    assert local(HOURS.add(at("2026-11-25 10:00"), 30 * MINUTE)) == "2026-11-25 10:30"
    assert local(HOURS.add(at("2026-11-27 17:50"), 30 * MINUTE)) == "2026-11-28 10:20"  # Friday → Saturday
    assert local(HOURS.add(at("2026-11-28 11:50"), 30 * MINUTE)) == "2026-11-28 13:20"  # over lunch
    assert local(HOURS.add(at("2026-11-28 23:00"), 30 * MINUTE)) == "2026-11-30 09:30"  # asked on a closed night
    assert local(HOURS.add(at("2026-11-25 10:00"), 9 * 60 * MINUTE)) == "2026-11-26 10:00"


def test_no_schedule_is_always_open() -> None:
    always = BusinessHours.parse("")
    assert always.always_open and always.is_open(at("2026-11-29 03:00"))
    assert always.add(1000.0, 60) == 1060.0
    assert always.next_open(5.0) == 5.0


def test_wrapping_day_ranges_and_whole_days() -> None:
    weekend = BusinessHours.parse("fri-mon 00:00-24:00", "UTC")
    assert weekend.is_open(dt.datetime(2026, 11, 29, 23, 59, tzinfo=dt.UTC).timestamp())  # Sunday
    assert not weekend.is_open(dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC).timestamp())  # Wednesday


@pytest.mark.parametrize(
    ("spec", "zone", "holidays", "message"),
    [
        ("mon-fri", "Asia/Shanghai", [], "give days then times"),
        ("weekdays 09:00-18:00", "Asia/Shanghai", [], "days are"),
        ("mon 9-18", "Asia/Shanghai", [], "HH:MM-HH:MM"),
        ("mon 18:00-09:00", "Asia/Shanghai", [], "not a range"),
        ("mon 09:00-25:00", "Asia/Shanghai", [], "not a range"),
        ("mon 09:00-18:00", "Mars/Olympus", [], "unknown time zone"),
        ("mon 09:00-18:00", "Asia/Shanghai", ["1 Oct"], "ISO dates"),
    ],
)
def test_a_bad_setting_says_what_is_wrong(spec: str, zone: str, holidays: list[str], message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        BusinessHours.parse(spec, zone, holidays)


def test_opening_times_for_customers() -> None:
    monday = dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)
    assert opening_time(monday, "zh-CN") == "11月30日（周一）09:00（GMT+8）"
    assert opening_time(monday, "zh-TW") == "11月30日（週一）09:00（GMT+8）"
    assert opening_time(monday, "en") == "Mon 30 Nov, 09:00 (GMT+8)"
    assert opening_time(monday.astimezone(ZoneInfo("Asia/Kolkata")), "en").endswith("(GMT+5:30)")


def test_settings_refuse_an_unreadable_schedule_at_start() -> None:
    from pydantic import ValidationError

    from bot.settings import Settings

    with pytest.raises(ValidationError, match=r"AUTORESPONDER_BUSINESS_HOURS.*HH:MM-HH:MM"):
        Settings(_env_file=None, business_hours="mon 9-18")  # type: ignore[call-arg]
    hours = Settings(_env_file=None, business_hours="mon-fri 09:00-18:00", holidays="2026-10-01").hours()  # type: ignore[call-arg]
    assert not hours.is_open(at("2026-10-01 10:00"))
