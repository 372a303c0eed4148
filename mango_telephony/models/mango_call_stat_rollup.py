"""Two narrow companions of ``mango.call.stat`` that keep the dashboard fast over
years of calls without giving up exact figures.

* ``mango.call.stat.period``: the day rows summed per week and per month, with
  the direction folded into columns. "All time" then reads a few thousand rows
  instead of one per employee, line, direction and day. A pivot by week groups
  in the weeks of the user's language, which start on Monday, Sunday or
  Saturday (every ``week_start`` Odoo's languages use), so the weeks are kept
  for each of the three.
* ``mango.call.stat.callback``: one row per missed call that was called back,
  with its delay. The exact median is the middle entry of an index ordered by
  delay, so it is read by skipping along the index instead of sorting every
  delay ever recorded.
* ``mango.call.stat.callback.bucket``: how many of those delays fall in each
  band of delays (``delay_bucket``), per employee, line and direction. Over
  the whole history the median's band is found by counting a few thousand
  bands, and only that band is walked in the index: the walk of hundreds of
  thousands of delays to the middle becomes one of a band's.

Both are derived data, changed together with the day rows they come from
(``mango.call.stat._mango_refresh_calls``) and rebuilt with them. Nobody reads them
directly: the dashboard applies the record rules of ``mango.call.stat`` to them
(see ``mango.call.stat._mango_rules_for``), so there is one set of rules.
"""

from datetime import timedelta
from typing import NamedTuple

from odoo import fields, models
from odoo.tools import SQL
from odoo.tools.sql import column_exists, table_exists

from .mango_call import DIRECTIONS as CALL_DIRECTIONS

GRANULARITIES = [
    ("week", "Week (from Monday)"),
    ("week_sunday", "Week (from Sunday)"),
    ("week_saturday", "Week (from Saturday)"),
    ("month", "Month"),
]
# res.lang.week_start (ISO day number of a week's first day) -> the weekly
# totals in those weeks. Odoo's own languages use these three.
WEEK_GRANULARITIES = {"1": "week", "7": "week_sunday", "6": "week_saturday"}
WEEK_STARTS = {value: int(key) for key, value in WEEK_GRANULARITIES.items()}


class SummedPeriods(NamedTuple):
    """The rows of the totals in ``domain`` summed per value of ``columns``
    (the fields a grouped read groups by), with the sums of ``sums``: what
    ``mango.call.stat.period`` reads from within the context key
    ``mango_period_groups`` (``MangoCallStatPeriod._table_sql``). Only this
    class is obeyed there, and only as superuser: a context sent over RPC
    holds lists and dicts, never one of these."""

    domain: list
    columns: tuple
    sums: tuple


def period_start(granularity, day):
    """First day of the week or month of ``granularity`` holding ``day``."""
    if granularity == "month":
        return day.replace(day=1)
    return day - timedelta(days=(day.isoweekday() - WEEK_STARTS[granularity]) % 7)


def period_after(granularity, start):
    """First day of the period following the one starting on ``start``."""
    if granularity == "month":
        return (start + timedelta(days=31)).replace(day=1)
    return start + timedelta(days=7)


def period_bucket_sql(granularity, column):
    """SQL of the first day of ``column``'s period, the way Odoo's read_group
    computes ``date:week`` for a language starting its weeks that day."""
    if granularity == "month":
        return SQL("date_trunc('month', %s)::date", column)
    # Odoo: days_offset = first_week_day and 7 - first_week_day (0 = Monday).
    first_week_day = WEEK_STARTS[granularity] - 1
    offset = f"-{first_week_day and 7 - first_week_day} DAY"
    return SQL(
        "(date_trunc('week', %s::timestamp - INTERVAL %s) + INTERVAL %s)::date",
        column,
        offset,
        offset,
    )


def delay_bucket(delay):
    """The band of call-back delays holding ``delay`` (seconds), as its lowest
    delay: exact below 20 s, then bands as wide as 5 in the second digit
    (20-24, ..., 95-99, 100-149, ..., 1000-1499, ...). A band spans at most
    half of its lowest delay, and a history of any length has about twenty
    bands per decade of delays for each employee and line: few to count,
    short to walk."""
    if delay < 20:
        return delay
    return delay - delay % delay_bucket_width(delay)


def delay_bucket_width(bucket):
    """How many whole-second delays the band starting at ``bucket`` holds."""
    if bucket < 20:
        return 1
    return 5 * 10 ** (len(str(bucket)) - 2)


def delay_bucket_sql(column):
    """``delay_bucket`` of an integer column, in SQL."""
    return SQL(
        "CASE WHEN %(delay)s < 20 THEN %(delay)s ELSE %(delay)s - "
        "mod(%(delay)s, 5 * (10 ^ (length(%(delay)s::text) - 2))::integer) END",
        delay=column,
    )


def mango_derive_once(env):
    """Fill what a database upgraded from an earlier version lacks, once:

    * from a version without the weeks, months and delays, or (1.3.0) without
      the ledger of each call's contribution
      (``mango_call_stat_contribution.py``), the day rows have nothing derived
      yet: everything is rebuilt from the calls (the delays then know their
      call too);
    * from 1.2.0, with Monday weeks and months only: the other weeks are
      summed from its day rows;
    * from 1.4.0, without the bands of delays: they are counted from the
      delays.

    Called from the ``init`` of the four models, whose order Odoo does not
    fix: only the last one finds every table and column.
    """
    cr = env.cr
    cr.execute(
        SQL(
            "SELECT to_regclass('mango_call_stat') IS NOT NULL "
            "AND to_regclass('mango_call_stat_period') IS NOT NULL "
            "AND to_regclass('mango_call_stat_callback') IS NOT NULL "
            "AND to_regclass('mango_call_stat_contribution') IS NOT NULL "
            "AND to_regclass('mango_call_stat_callback_bucket') IS NOT NULL"
        )
    )
    if not cr.fetchone()[0] or not column_exists(
        cr, "mango_call_stat_callback", "call_id"
    ):
        return
    cr.execute(
        SQL(
            "SELECT EXISTS (SELECT 1 FROM mango_call_stat) "
            "AND (NOT EXISTS (SELECT 1 FROM mango_call_stat_period) "
            "     OR NOT EXISTS (SELECT 1 FROM mango_call_stat_contribution))"
        )
    )
    if cr.fetchone()[0]:
        env["mango.call.stat"].sudo()._mango_rebuild()
        return
    cr.execute(SQL("SELECT EXISTS (SELECT 1 FROM mango_call_stat)"))
    if not cr.fetchone()[0]:
        return
    Stat = env["mango.call.stat"].sudo()
    cr.execute(
        SQL(
            "SELECT EXISTS (SELECT 1 FROM mango_call_stat_callback) "
            "AND NOT EXISTS (SELECT 1 FROM mango_call_stat_callback_bucket)"
        )
    )
    if cr.fetchone()[0]:
        cr.execute(Stat._mango_bucket_insert_sql())
    for granularity, _label in GRANULARITIES:
        cr.execute(
            SQL(
                "SELECT EXISTS (SELECT 1 FROM mango_call_stat_period "
                "WHERE granularity = %s)",
                granularity,
            )
        )
        if not cr.fetchone()[0]:
            cr.execute(Stat._mango_period_insert_sql(granularity, SQL("TRUE")))


class MangoCallStatPeriod(models.Model):
    _name = "mango.call.stat.period"
    _description = "Call statistics per week and month"
    _order = "date desc, id desc"
    _log_access = False
    _rec_name = "date"
    # Only these fields mean the same here as on a day row: a rule on the date
    # or the direction cannot be answered from a week or month total.
    _mango_rule_fields = frozenset(
        ("company_id", "account_id", "user_id", "line_number")
    )

    granularity = fields.Selection(GRANULARITIES, required=True, readonly=True)
    date = fields.Date(
        required=True,
        readonly=True,
        help="First day of the week (a Monday, Sunday or Saturday, after the "
        "granularity) or of the month.",
    )
    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="Employee", readonly=True)
    line_number = fields.Char(string="Line", readonly=True)
    # How many day rows the total stands for: the "count" of a pivot or a
    # grouped list answered from here (mango.call.stat._read_group).
    row_count = fields.Integer(string="Day rows", readonly=True)
    call_count = fields.Integer(string="Calls", readonly=True)
    incoming_count = fields.Integer(string="Incoming", readonly=True)
    outgoing_count = fields.Integer(string="Outgoing", readonly=True)
    internal_count = fields.Integer(string="Internal", readonly=True)
    answered_count = fields.Integer(string="Answered", readonly=True)
    missed_count = fields.Integer(string="Missed", readonly=True)
    failed_count = fields.Integer(string="Failed", readonly=True)
    missed_pending_count = fields.Integer(
        string="Missed, not called back", readonly=True
    )
    called_back_count = fields.Integer(string="Called back", readonly=True)
    wait_total = fields.Float(
        string="Waiting before answer (s)", readonly=True, digits=(16, 0)
    )
    talk_total = fields.Float(string="Talk time (s)", readonly=True, digits=(16, 0))
    callback_time_total = fields.Float(
        string="Time to call back (s)", readonly=True, digits=(16, 0)
    )

    @property
    def _table_sql(self):
        """The table, or within ``mango_period_groups`` (a ``SummedPeriods``,
        see ``mango.call.stat._mango_periods_summed``) its rows in the domain
        already summed per value of the grouped fields: a grouping by employee
        then joins, sorts and sums a third of the rows (one per employee and
        week, not one per line too). Grouping sums again, so every figure is
        the same."""
        scope = self.env.context.get("mango_period_groups")
        if not isinstance(scope, SummedPeriods) or not self.env.su:
            return super()._table_sql
        domain, columns, sums = scope
        query = self.with_context(mango_period_groups=None)._search(domain)
        where = query.where_clause or SQL("TRUE")
        keys = SQL(", ").join(SQL.identifier(query.table, name) for name in columns)
        return SQL(
            "(SELECT %s, %s FROM %s WHERE %s GROUP BY %s)",
            keys,
            SQL(", ").join(
                SQL(
                    "sum(%s) AS %s",
                    SQL.identifier(query.table, name),
                    SQL.identifier(name),
                )
                for name in sums
            ),
            query.from_clause,
            where,
            keys,
        )

    def init(self):
        if not table_exists(self.env.cr, self._table):
            # Odoo started on newer code without upgrading the module: it calls
            # init() of models whose table is missing, and then reports them.
            return
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_period_scope_idx "
                "ON mango_call_stat_period (company_id, granularity, date)"
            )
        )
        # The upkeep rewrites the weeks and months of one account.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_period_account_idx "
                "ON mango_call_stat_period (account_id, granularity, date)"
            )
        )
        mango_derive_once(self.env)


class MangoCallStatCallback(models.Model):
    _name = "mango.call.stat.callback"
    _description = "Delays of called-back missed calls"
    _order = "date desc, id desc"
    _log_access = False
    _rec_name = "date"
    # Every key of a day row is here, so any rule on those keys applies as is.
    _mango_rule_fields = frozenset(
        ("company_id", "account_id", "user_id", "line_number", "direction", "date")
    )

    date = fields.Date(required=True, readonly=True)
    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="Employee", readonly=True)
    line_number = fields.Char(string="Line", readonly=True)
    direction = fields.Selection(
        CALL_DIRECTIONS,
        readonly=True,
    )
    delay = fields.Integer(string="Time to call back (s)", readonly=True)
    # The call the delay is of (no foreign key, like the ledger's): a refresh
    # replaces the row of one call.
    call_id = fields.Integer(readonly=True)

    def init(self):
        cr = self.env.cr
        if not table_exists(cr, self._table):
            # Odoo started on newer code without upgrading the module: it calls
            # init() of models whose table is missing, and then reports them.
            return
        # Ordered by delay within a scope: the median of a scope is then an
        # index-only walk to its middle (see mango.call.stat._mango_medians).
        for name, columns in (
            ("company_delay", "company_id, delay"),
            ("company_user_delay", "company_id, user_id, delay"),
            ("company_line_delay", "company_id, line_number, delay"),
            ("company_date", "company_id, date"),
            ("account_date", "account_id, date"),
            ("call", "call_id"),
        ):
            cr.execute(
                SQL(
                    "CREATE INDEX IF NOT EXISTS %s ON mango_call_stat_callback (%s)",
                    SQL.identifier(f"mango_call_stat_callback_{name}_idx"),
                    SQL(columns),
                )
            )
        mango_derive_once(self.env)


class MangoCallStatCallbackBucket(models.Model):
    _name = "mango.call.stat.callback.bucket"
    _description = "Call-back delays counted per band"
    _order = "bucket, id"
    _log_access = False
    _rec_name = "bucket"
    # No date here: a rule on the date is answered by the delays themselves.
    _mango_rule_fields = frozenset(
        ("company_id", "account_id", "user_id", "line_number", "direction")
    )

    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="Employee", readonly=True)
    line_number = fields.Char(string="Line", readonly=True)
    direction = fields.Selection(CALL_DIRECTIONS, readonly=True)
    bucket = fields.Integer(
        string="From (s)",
        readonly=True,
        help="The shortest delay of the band: exact below 20 seconds, then "
        "bands of 5 in the second digit (20-24 s, 100-149 s, 1000-1499 s...).",
    )
    delay_count = fields.Integer(string="Delays", readonly=True)

    def init(self):
        if not table_exists(self.env.cr, self._table):
            # Odoo started on newer code without upgrading the module: it calls
            # init() of models whose table is missing, and then reports them.
            return
        # A refresh finds the band of a key among its account's.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_callback_bucket_key_idx "
                "ON mango_call_stat_callback_bucket (account_id, bucket)"
            )
        )
        mango_derive_once(self.env)
