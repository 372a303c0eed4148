"""Office hours: "is this moment inside working hours, and when does the next period start".

A schedule is a weekly pattern of periods in a named time zone, minus closed intervals
(public holidays, leaves). The Odoo side turns a ``resource.calendar`` into one; the
website callback widget and its cron ask it the two questions above.
"""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc
# A year of empty days is enough to prove a schedule has no opening at all; searching
# further would only hide a misconfiguration behind a long loop.
SEARCH_DAYS = 370


@dataclass(frozen=True)
class Period:
    """One working period on a weekday (0 = Monday), as hours since local midnight."""

    weekday: int
    start_hour: float
    end_hour: float

    def __post_init__(self):
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        if not 0 <= self.start_hour < self.end_hour <= 24:
            raise ValueError(
                f"a period must satisfy 0 <= start < end <= 24, got "
                f"{self.start_hour}-{self.end_hour}"
            )


@dataclass
class Schedule:
    periods: list
    timezone: str = "UTC"
    # (start, end) aware datetimes during which the office is closed regardless of
    # the weekly pattern: public holidays and other leaves.
    closures: list = field(default_factory=list)
    always_open: bool = False

    def __post_init__(self):
        self.tz = ZoneInfo(self.timezone)
        self.periods = sorted(self.periods, key=lambda p: (p.weekday, p.start_hour))
        for start, end in self.closures:
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("closures must be timezone-aware datetimes")

    @staticmethod
    def _as_aware(moment):
        if moment.tzinfo is None:
            # Odoo stores naive UTC datetimes; anything naive is read that way.
            return moment.replace(tzinfo=UTC)
        return moment

    def _local_intervals(self, day):
        """Working intervals of one local calendar day, as aware datetimes."""
        for period in self.periods:
            if period.weekday != day.weekday():
                continue
            midnight = dt.datetime.combine(day, dt.time(0))
            start = midnight + dt.timedelta(hours=period.start_hour)
            end = midnight + dt.timedelta(hours=period.end_hour)
            yield start.replace(tzinfo=self.tz), end.replace(tzinfo=self.tz)

    def _open_intervals_from(self, moment):
        """Working intervals minus closures, in order, from the day of ``moment``."""
        local_day = moment.astimezone(self.tz).date()
        for offset in range(SEARCH_DAYS):
            for start, end in self._local_intervals(
                local_day + dt.timedelta(days=offset)
            ):
                yield from self._subtract_closures(
                    start.astimezone(UTC), end.astimezone(UTC)
                )

    def _subtract_closures(self, start, end):
        pieces = [(start, end)]
        for c_start, c_end in self.closures:
            c_start, c_end = c_start.astimezone(UTC), c_end.astimezone(UTC)
            next_pieces = []
            for p_start, p_end in pieces:
                if c_end <= p_start or c_start >= p_end:
                    next_pieces.append((p_start, p_end))
                    continue
                if p_start < c_start:
                    next_pieces.append((p_start, c_start))
                if c_end < p_end:
                    next_pieces.append((c_end, p_end))
            pieces = next_pieces
        return pieces

    def is_open(self, moment):
        moment = self._as_aware(moment).astimezone(UTC)
        if self.always_open:
            return True
        for start, end in self._open_intervals_from(moment - dt.timedelta(days=1)):
            if start > moment:
                return False
            if start <= moment < end:
                return True
        return False

    def next_opening(self, moment):
        """The moment the office is next open: ``moment`` itself when open now.

        Returns an aware UTC datetime, or ``None`` when the schedule has no working
        period in the coming year (empty pattern or a closure covering it all).
        """
        moment = self._as_aware(moment).astimezone(UTC)
        if self.always_open:
            return moment
        for start, end in self._open_intervals_from(moment - dt.timedelta(days=1)):
            if end <= moment:
                continue
            return max(start, moment)
        return None

    def openings(self, moment, count):
        """The start of each of the next ``count`` working intervals (slot pickers)."""
        moment = self._as_aware(moment).astimezone(UTC)
        found = []
        for start, end in self._open_intervals_from(moment - dt.timedelta(days=1)):
            if end <= moment:
                continue
            found.append((max(start, moment), end))
            if len(found) == count:
                break
        return found
