import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mango_office.schedule import Period, Schedule

MSK = ZoneInfo("Europe/Moscow")
UTC = dt.timezone.utc


def weekdays_9_to_18(**kwargs):
    return Schedule(
        [Period(day, 9, 18) for day in range(5)], timezone="Europe/Moscow", **kwargs
    )


def msk(*args):
    return dt.datetime(*args, tzinfo=MSK)


def test_open_inside_hours_in_local_time():
    schedule = weekdays_9_to_18()
    assert schedule.is_open(msk(2026, 11, 25, 9, 0))  # a Wednesday
    assert schedule.is_open(msk(2026, 11, 25, 17, 59))
    assert not schedule.is_open(msk(2026, 11, 25, 18, 0))
    assert not schedule.is_open(msk(2026, 11, 25, 8, 59))


def test_naive_moments_are_utc():
    schedule = weekdays_9_to_18()
    # 06:30 UTC is 09:30 in Moscow.
    assert schedule.is_open(dt.datetime(2026, 11, 25, 6, 30))
    assert not schedule.is_open(dt.datetime(2026, 11, 25, 5, 30))


def test_next_opening_is_now_when_open():
    moment = msk(2026, 11, 25, 12, 0)
    assert weekdays_9_to_18().next_opening(moment) == moment.astimezone(UTC)


def test_next_opening_after_hours_is_next_morning():
    opening = weekdays_9_to_18().next_opening(msk(2026, 11, 25, 19, 0))
    assert opening == msk(2026, 11, 26, 9, 0).astimezone(UTC)


def test_friday_evening_opens_on_monday():
    opening = weekdays_9_to_18().next_opening(msk(2026, 11, 27, 18, 30))
    assert opening == msk(2026, 11, 30, 9, 0)


def test_public_holiday_is_skipped():
    holiday = (msk(2026, 11, 26, 0, 0), msk(2026, 11, 27, 0, 0))
    schedule = weekdays_9_to_18(closures=[holiday])
    assert not schedule.is_open(msk(2026, 11, 26, 12, 0))
    assert schedule.next_opening(msk(2026, 11, 25, 20, 0)) == msk(2026, 11, 27, 9, 0)


def test_partial_closure_splits_the_day():
    lunch = (msk(2026, 11, 25, 13, 0), msk(2026, 11, 25, 14, 0))
    schedule = weekdays_9_to_18(closures=[lunch])
    assert not schedule.is_open(msk(2026, 11, 25, 13, 30))
    assert schedule.next_opening(msk(2026, 11, 25, 13, 30)) == msk(2026, 11, 25, 14, 0)


def test_local_hours_hold_across_dst_change():
    # New York switches to standard time on 2026-11-01: local hours still hold.
    schedule = Schedule([Period(6, 10, 12)], timezone="America/New_York")
    ny = ZoneInfo("America/New_York")
    assert schedule.is_open(dt.datetime(2026, 11, 1, 11, 0, tzinfo=ny))
    assert schedule.is_open(dt.datetime(2026, 10, 25, 11, 0, tzinfo=ny))


def test_empty_schedule_never_opens():
    schedule = Schedule([], timezone="UTC")
    assert not schedule.is_open(dt.datetime(2026, 1, 1, 12, 0))
    assert schedule.next_opening(dt.datetime(2026, 1, 1, 12, 0)) is None


def test_always_open():
    schedule = Schedule([], always_open=True)
    moment = dt.datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    assert schedule.is_open(moment)
    assert schedule.next_opening(moment) == moment


def test_openings_lists_slots_in_order():
    slots = weekdays_9_to_18().openings(msk(2026, 11, 27, 17, 0), 3)
    assert [start for start, _end in slots] == [
        msk(2026, 11, 27, 17, 0),
        msk(2026, 11, 30, 9, 0),
        msk(2026, 12, 1, 9, 0),
    ]


@pytest.mark.parametrize("args", [(7, 9, 18), (0, 18, 9), (0, -1, 5), (0, 9, 25)])
def test_invalid_periods_are_refused(args):
    with pytest.raises(ValueError):
        Period(*args)


def test_naive_closure_refused():
    with pytest.raises(ValueError):
        weekdays_9_to_18(closures=[(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2))])


@given(
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1))
)
def test_next_opening_is_open_and_not_before(moment):
    schedule = weekdays_9_to_18()
    opening = schedule.next_opening(moment)
    assert opening >= moment.replace(tzinfo=UTC)
    assert schedule.is_open(opening)
    if schedule.is_open(moment):
        assert opening == moment.replace(tzinfo=UTC)
