"""Call statistics pre-aggregated per account × day × employee × line × direction.

Grouping a million ``mango.call`` rows on every dashboard load is too slow, so
``mango.call.stat`` keeps one row per key with additive counters. A row is always
recomputed from the calls of its (account, day) — never incremented — so running
the refresh twice, or after a re-fold, changes nothing, and a full rebuild gives
the same table. The weekly/monthly totals and the call-back delays
(``mango_call_stat_rollup.py``) are rewritten from the same refresh, the same
way.
"""

import logging
import random
import time as _time
from collections import defaultdict
from datetime import datetime, time, timedelta

import psycopg2
import pytz

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import AccessError
from odoo.service.model import PG_CONCURRENCY_ERRORS_TO_RETRY
from odoo.tools import SQL, get_lang

from mango_office.rules import FINISHED_STATUSES, MOSCOW_TZ_NAME

from ..compat import domains
from .group_labels import format_rows_once_per_value, web_format_once_per_value
from .mango_call import DIRECTIONS as CALL_DIRECTIONS
from .mango_call_stat_rollup import (
    GRANULARITIES,
    WEEK_GRANULARITIES,
    mango_derive_once,
    period_after,
    period_bucket_sql,
    period_start,
)

_logger = logging.getLogger(__name__)

STAT_KEYS = "mango.call.stat.keys"
# Tries of a refresh that meets a serialization failure or a deadlock.
REFRESH_ATTEMPTS = 5
DEFAULT_TZ = MOSCOW_TZ_NAME
# ratio field -> (numerator, denominator, factor): recomputed for every group from
# the summed counters, since an average of per-row ratios would be wrong.
RATIO_FIELDS = {
    "answered_rate": ("answered_count", "call_count", 100.0),
    "avg_wait": ("wait_total", "answered_count", 1.0),
    "avg_talk": ("talk_total", "answered_count", 1.0),
    "avg_callback_time": ("callback_time_total", "called_back_count", 1.0),
}
COUNTERS = (
    "call_count",
    "answered_count",
    "missed_count",
    "failed_count",
    "missed_pending_count",
    "called_back_count",
    "wait_total",
    "talk_total",
    "callback_time_total",
)
DIRECTIONS = tuple(key for key, _label in CALL_DIRECTIONS)
TOTAL = "__total__"
# Up to this many delays in scope, sorting them is cheaper than one index walk
# per group (measured: 20k delays sort in a few ms).
SORT_MEDIAN_LIMIT = 20000
PERIODS = ("day", "week", "month", "all")
SECONDS = (16, 0)
# Groupings the weekly and monthly totals answer (see _mango_read_group_periods).
PERIOD_KEYS = ("user_id", "line_number", "company_id", "account_id")
PERIOD_GRANULARITY = {
    "week": "week",
    "month": "month",
    "quarter": "month",
    "year": "month",
}
INTERVALS = ("day", "week", "month")


def _stat_tz(company):
    """The time zone whose days the statistics count in: the company's address
    time zone, else Moscow (Mango's own)."""
    name = company.partner_id.tz or DEFAULT_TZ
    try:
        pytz.timezone(name)
    except pytz.UnknownTimeZoneError:
        name = DEFAULT_TZ
    return name


def _where(query):
    """The WHERE condition of an ORM query, ``TRUE`` when it has none."""
    if query.is_empty():
        return SQL("FALSE")
    where = query.where_clause
    return where if where.code else SQL("TRUE")


def _ratio(numerator, denominator, factor=1.0):
    return round(numerator * factor / denominator, 2) if denominator else 0.0


def _period_granularity(groupby):
    """The totals ("week" or "month") that answer ``groupby``, or None."""
    granularity = None
    for spec in groupby:
        name, _sep, part = spec.partition(":")
        if name in PERIOD_KEYS and not part:
            continue
        if name != "date" or part not in PERIOD_GRANULARITY:
            return None
        if granularity not in (None, PERIOD_GRANULARITY[part]):
            return None
        granularity = PERIOD_GRANULARITY[part]
    return granularity or "month"


def _period_plans(aggregates):
    """How each aggregate is read from the totals: ``("sum", spec)`` or
    ``("ratio", numerator spec, denominator spec, factor)``; None when one
    cannot be."""
    plans = []
    for spec in aggregates:
        name, _sep, function = spec.partition(":")
        if spec == "__count":
            plans.append(("sum", "row_count:sum"))
        elif name in COUNTERS and function == "sum":
            plans.append(("sum", spec))
        elif name in RATIO_FIELDS and function in ("avg", "sum", "max", "min"):
            numerator, denominator, factor = RATIO_FIELDS[name]
            plans.append(("ratio", f"{numerator}:sum", f"{denominator}:sum", factor))
        else:
            return None
    return plans


def _ratios_from_sums(aggregates):
    """What to read instead of ``aggregates`` so that every ratio (answer rate,
    average wait…) of a group is its sums' ratio, not an average of the day
    rows' ratios, and how to turn a row read so back into the row asked for.

    :return: ``(specs to read, finish(row, width))``
    """
    specs, plans = [], []

    def position(spec):
        if spec not in specs:
            specs.append(spec)
        return specs.index(spec)

    for spec in aggregates:
        name, _sep, function = spec.partition(":")
        if name in RATIO_FIELDS and function in ("avg", "sum", "max", "min"):
            numerator, denominator, factor = RATIO_FIELDS[name]
            plans.append(
                (position(f"{numerator}:sum"), position(f"{denominator}:sum"), factor)
            )
        else:
            plans.append((position(spec), None, None))

    def finish(row, width):
        sums = row[width:]
        values = list(row[:width])
        for first, second, factor in plans:
            if second is None:
                values.append(sums[first])
            else:
                values.append(_ratio(sums[first] or 0, sums[second] or 0, factor))
        return tuple(values)

    return specs, finish


def _period_order(order, groupby):
    """``order`` in terms of the totals ("" for none), or None when it sorts
    on something they do not have."""
    terms = []
    for term in (order or "").split(","):
        words = term.split()
        if not words:
            continue
        if words[0] == "__count":
            words[0] = "row_count:sum"
        elif words[0] not in groupby and not (
            words[0].partition(":")[0] in COUNTERS and words[0].endswith(":sum")
        ):
            return None
        terms.append(" ".join(words))
    return ", ".join(terms)


def _orders_within(order, grouping_sets):
    """How to order each of ``grouping_sets`` read together: ``order`` without
    the terms on the other groupings' fields (the web client orders every
    grouping by all of them; a grouping's rows do not vary on the fields it
    lacks, which the ORM and the totals refuse to sort by).

    :return: ``order_within(specs)``, the order for a grouping of ``specs``
    """
    all_specs = {spec for grouping in grouping_sets for spec in grouping}
    order_terms = [term.split() for term in (order or "").split(",")]

    def order_within(specs):
        return ", ".join(
            " ".join(words)
            for words in order_terms
            if words and (words[0] not in all_specs or words[0] in specs)
        )

    return order_within


class MangoCallStat(models.Model):
    _name = "mango.call.stat"
    _description = "Call statistics"
    _order = "date desc, id desc"
    _log_access = False
    _rec_name = "date"

    date = fields.Date(required=True, readonly=True, index=True)
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
    call_count = fields.Integer(string="Calls", readonly=True)
    answered_count = fields.Integer(string="Answered", readonly=True)
    missed_count = fields.Integer(string="Missed", readonly=True)
    failed_count = fields.Integer(string="Failed", readonly=True)
    missed_pending_count = fields.Integer(
        string="Missed, not called back",
        readonly=True,
        help="Incoming calls nobody answered and nobody has called back yet.",
    )
    called_back_count = fields.Integer(string="Called back", readonly=True)
    # Seconds, shown whole: a fraction of a second says nothing about a call,
    # and pivot measures picked from the menu get no widget to round them.
    wait_total = fields.Float(
        string="Waiting before answer (s)", readonly=True, digits=SECONDS
    )
    talk_total = fields.Float(string="Talk time (s)", readonly=True, digits=SECONDS)
    callback_time_total = fields.Float(
        string="Time to call back (s)", readonly=True, digits=SECONDS
    )
    answered_rate = fields.Float(string="Answered (%)", readonly=True, aggregator="avg")
    avg_wait = fields.Float(
        string="Average wait (s)", readonly=True, aggregator="avg", digits=SECONDS
    )
    avg_talk = fields.Float(
        string="Average talk (s)", readonly=True, aggregator="avg", digits=SECONDS
    )
    avg_callback_time = fields.Float(
        string="Average time to call back (s)",
        readonly=True,
        aggregator="avg",
        digits=SECONDS,
    )

    def init(self):
        # The call-back times of each row used to live in an array here; they
        # are rows of mango.call.stat.callback now (exact median by index).
        self.env.cr.execute(
            SQL("ALTER TABLE mango_call_stat DROP COLUMN IF EXISTS callback_times")
        )
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_company_date_idx "
                "ON mango_call_stat (company_id, date)"
            )
        )
        mango_derive_once(self.env)

    # ------------------------------------------------------------------
    # Groups with correct ratios (pivot, graph, dashboard)
    # ------------------------------------------------------------------

    @api.model
    def _read_group(
        self,
        domain,
        groupby=(),
        aggregates=(),
        having=(),
        offset=0,
        limit=None,
        order=None,
    ):
        routed = self._mango_read_group_periods(
            domain, groupby, aggregates, having, offset, limit, order
        )
        if routed is not None:
            return routed
        specs, finish = _ratios_from_sums(aggregates)
        rows = super()._read_group(domain, groupby, specs, having, offset, limit, order)
        return [finish(row, len(groupby)) for row in rows]

    @api.model
    def _read_grouping_sets(self, domain, grouping_sets, aggregates=(), order=None):
        # Odoo 19.0's pivot reads all its groupings at once through this method
        # rather than _read_group: each grouping the weekly or monthly totals
        # answer is read from them, the others from the day rows in one query,
        # with the same care for the ratios (each in its own order: _orders_within).
        order_within = _orders_within(order, grouping_sets)
        answers = [
            self._mango_read_group_periods(
                domain, grouping, aggregates, (), 0, None, order_within(grouping)
            )
            for grouping in grouping_sets
        ]
        from_days = [
            grouping
            for grouping, answer in zip(grouping_sets, answers, strict=True)
            if answer is None
        ]
        if from_days:
            specs, finish = _ratios_from_sums(aggregates)
            day_order = order_within(
                {spec for grouping in from_days for spec in grouping}
            )
            results = iter(
                super()._read_grouping_sets(domain, from_days, specs, day_order or None)
            )
            answers = [
                answer
                if answer is not None
                else [finish(row, len(grouping)) for row in next(results)]
                for grouping, answer in zip(grouping_sets, answers, strict=True)
            ]
        return answers

    @api.model
    def _read_group_format_result(self, rows_dict, lazy_groupby):
        # A pivot by employee × week has thousands of groups and a hundred
        # weeks: each week's label, bounds and domain formatted once
        # (group_labels.py), Odoo's answer unchanged.
        format_rows_once_per_value(
            super()._read_group_format_result, self, rows_dict, lazy_groupby
        )

    @api.model
    def _web_read_group_format(self, groupby, aggregates, groups):
        # The same for 19.0's web client (formatted_read_group and
        # formatted_read_grouping_sets); 18.0 has no such hook. A grouping
        # the kanban or list view expands (folded columns) is Odoo's.
        if self._web_read_group_field_expand(groupby):
            return super()._web_read_group_format(groupby, aggregates, groups)
        return web_format_once_per_value(
            super()._web_read_group_format, self, groupby, aggregates, groups
        )

    def _mango_read_group_periods(
        self, domain, groupby, aggregates, having, offset, limit, order
    ):
        """Answer a grouping from the weekly or monthly totals when they hold
        exactly the same figures: the pivot's employee × week over the whole
        history reads thousands of rows instead of one per day and key.

        :return: the rows ``_read_group`` would return, or None when the day
            rows are needed (a day or direction grouping, a filter on the date
            not aligned on the periods, a rule or measure the totals cannot
            answer)
        """
        granularity = None if having else _period_granularity(groupby)
        # The ORM's weeks start on the language's first day: the weekly totals
        # starting that day answer (a language starting its weeks on another
        # day than Odoo's own languages do is answered from the day rows).
        if granularity == "week":
            granularity = WEEK_GRANULARITIES.get(str(get_lang(self.env).week_start))
        plans = _period_plans(aggregates)
        order = _period_order(order, groupby)
        if (
            granularity is None
            or plans is None
            or order is None
            or not self._mango_domain_fits_periods(domain, granularity)
        ):
            return None
        Period = self.env["mango.call.stat.period"]
        rules = self._mango_rules_for(Period)
        if rules is None:
            return None
        self.check_access("read")
        specs = []
        for plan in plans:
            specs.extend(spec for spec in plan[1:3] if spec not in specs)
        rows = Period.sudo()._read_group(
            domains.AND([domain, rules, [("granularity", "=", granularity)]]),
            groupby,
            specs,
            offset=offset,
            limit=limit,
            order=order or None,
        )
        width = len(groupby)
        result = []
        # Each employee's record moved to the caller's environment once, not
        # once per row (thousands of rows, a few dozen employees).
        in_env = {}

        def with_env(value):
            if not isinstance(value, models.BaseModel):
                return value
            if value not in in_env:
                in_env[value] = value.with_env(self.env)
            return in_env[value]

        # Where each measure's sums are in a row: one list per row, not a
        # dict and a list (the garbage collector's passes grow with them).
        steps = [
            (width + specs.index(plan[1]), None, None)
            if plan[0] == "sum"
            else (width + specs.index(plan[1]), width + specs.index(plan[2]), plan[3])
            for plan in plans
        ]
        for row in rows:
            values = [with_env(value) for value in row[:width]]
            for first, second, factor in steps:
                if second is None:
                    values.append(row[first])
                else:
                    values.append(_ratio(row[first] or 0, row[second] or 0, factor))
            result.append(tuple(values))
        return result

    def _mango_domain_fits_periods(self, domain, granularity):
        """Whether ``domain`` selects whole weeks or months on keys the totals
        keep, so that the totals answer it exactly."""
        Period = self.env["mango.call.stat.period"]
        for name, operator, value in domains.conditions(domain):
            if name in Period._mango_rule_fields:
                continue
            if name != "date" or operator not in (">=", ">", "<", "<=") or not value:
                return False
            try:
                bound = fields.Date.to_date(value)
            except (TypeError, ValueError):
                return False
            if operator in (">", "<="):
                bound += timedelta(days=1)
            if period_start(granularity, bound) != bound:
                return False
        return True

    # ------------------------------------------------------------------
    # Keeping the table current
    # ------------------------------------------------------------------

    def _mango_write_days_sql(self, where, tz):
        """Insert the day rows and the call-back delays of the finished calls
        matching ``where`` (on ``mango_call c``), from one read of those calls.

        The delays are the calls ``called_back_count`` counts, so the medians
        and the counts always agree.
        """
        return SQL(
            """
            WITH c AS MATERIALIZED (
                SELECT (c.start_time AT TIME ZONE 'UTC' AT TIME ZONE %(tz)s)::date
                           AS day,
                       c.account_id, c.company_id, c.employee_user_id,
                       c.line_number, c.direction, c.status,
                       c.callback_call_id IS NOT NULL AS called_back,
                       c.wait_duration, c.talk_duration, c.time_to_callback
                  FROM mango_call c
                 WHERE c.status IN %(finished)s AND c.start_time IS NOT NULL
                   AND %(where)s
            ),
            delays AS (
                INSERT INTO mango_call_stat_callback (
                    date, account_id, company_id, user_id, line_number, direction,
                    delay)
                SELECT day, account_id, company_id, employee_user_id, line_number,
                       direction, COALESCE(time_to_callback, 0)
                  FROM c
                 WHERE status = 'missed' AND called_back
              ORDER BY day
            ),
            agg (date, account_id, company_id, user_id, line_number, direction,
                 call_count, answered_count, missed_count, failed_count,
                 missed_pending_count, called_back_count, wait_total,
                 talk_total, callback_time_total) AS (
                SELECT day, account_id, company_id, employee_user_id, line_number,
                       direction,
                       count(*),
                       count(*) FILTER (WHERE status = 'answered'),
                       count(*) FILTER (WHERE status = 'missed'),
                       count(*) FILTER (WHERE status = 'failed'),
                       count(*) FILTER (WHERE status = 'missed'
                                          AND direction = 'incoming'
                                          AND NOT called_back),
                       count(*) FILTER (WHERE status = 'missed' AND called_back),
                       COALESCE(sum(wait_duration)
                                FILTER (WHERE status = 'answered'), 0),
                       COALESCE(sum(talk_duration)
                                FILTER (WHERE status = 'answered'), 0),
                       COALESCE(sum(time_to_callback)
                                FILTER (WHERE status = 'missed' AND called_back), 0)
                  FROM c
              GROUP BY 1, 2, 3, 4, 5, 6
            )
            INSERT INTO mango_call_stat (
                date, account_id, company_id, user_id, line_number, direction,
                call_count, answered_count, missed_count, failed_count,
                missed_pending_count, called_back_count, wait_total, talk_total,
                callback_time_total,
                answered_rate, avg_wait, avg_talk, avg_callback_time)
            SELECT date, account_id, company_id, user_id, line_number, direction,
                   call_count, answered_count, missed_count, failed_count,
                   missed_pending_count, called_back_count, wait_total, talk_total,
                   callback_time_total,
                   CASE WHEN call_count > 0
                        THEN round(answered_count * 100.0 / call_count, 2) END,
                   CASE WHEN answered_count > 0
                        THEN round((wait_total / answered_count)::numeric, 2) END,
                   CASE WHEN answered_count > 0
                        THEN round((talk_total / answered_count)::numeric, 2) END,
                   CASE WHEN called_back_count > 0
                        THEN round((callback_time_total / called_back_count)::numeric,
                                   2) END
              FROM agg
             -- A rebuild then stores the rows of a day side by side: the weeks
             -- and months summed from them read a few pages, not one per row.
          ORDER BY date
            """,
            tz=tz,
            finished=FINISHED_STATUSES,
            where=where,
        )

    def _mango_period_insert_sql(self, granularity, where):
        """Weeks or months summed from the day rows matching ``where``."""
        bucket = period_bucket_sql(granularity, SQL("s.date"))
        directions = [
            SQL(
                "COALESCE(sum(s.call_count) FILTER (WHERE s.direction = %s), 0)",
                direction,
            )
            for direction in DIRECTIONS
        ]
        return SQL(
            """
            INSERT INTO mango_call_stat_period (
                granularity, date, account_id, company_id, user_id, line_number,
                row_count, incoming_count, outgoing_count, internal_count,
                %(counters)s)
            SELECT %(granularity)s, %(bucket)s, s.account_id, s.company_id,
                   s.user_id, s.line_number, count(*), %(directions)s, %(sums)s
              FROM mango_call_stat s
             WHERE %(where)s
          GROUP BY %(bucket)s, s.account_id, s.company_id, s.user_id, s.line_number
            """,
            counters=SQL(", ").join(SQL.identifier(name) for name in COUNTERS),
            granularity=granularity,
            bucket=bucket,
            directions=SQL(", ").join(directions),
            sums=SQL(", ").join(
                SQL("sum(%s)", SQL.identifier("s", name)) for name in COUNTERS
            ),
            where=where,
        )

    def _mango_refresh_periods(self, account_id, days):
        """Rewrite the weeks and months of one account that contain ``days``
        from its day rows (already current in this transaction)."""
        cr = self.env.cr
        for granularity, _label in GRANULARITIES:
            starts = sorted({period_start(granularity, day) for day in days})
            cr.execute(
                SQL(
                    "DELETE FROM mango_call_stat_period WHERE account_id = %s "
                    "AND granularity = %s AND date IN %s",
                    account_id,
                    granularity,
                    tuple(starts),
                )
            )
            where = SQL(
                "s.account_id = %s AND s.date >= %s AND s.date < %s AND %s IN %s",
                account_id,
                starts[0],
                period_after(granularity, starts[-1]),
                period_bucket_sql(granularity, SQL("s.date")),
                tuple(starts),
            )
            cr.execute(self._mango_period_insert_sql(granularity, where))

    @staticmethod
    def _mango_keys_by_account(keys):
        by_account = defaultdict(set)
        for account_id, day in keys:
            if account_id and day:
                by_account[account_id].add(day)
        return by_account

    def _mango_lock_days(self, account_id, days):
        """Take the transaction locks of ``days`` of one account and of the
        weeks and months holding them, always in the same order (days, then
        periods, sorted), so that two refreshes take turns and never deadlock."""
        names = [f"{account_id}:{day}" for day in sorted(days)]
        # Days of one week or month refreshed by two workers at once: the week
        # and month rows are rewritten by one of them at a time.
        for granularity, _label in GRANULARITIES:
            names += sorted(
                {
                    f"{account_id}:{granularity}:{period_start(granularity, day)}"
                    for day in days
                }
            )
        for name in names:
            self.env.cr.execute(
                SQL(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    f"mango.call.stat:{name}",
                )
            )

    def _mango_recompute_days(self, account_id, days):
        """Rewrite the day rows, delays, weeks and months of ``days`` of one
        account from its calls (the caller holds the days' locks)."""
        cr = self.env.cr
        days = sorted(days)
        account = self.env["mango.account"].sudo().browse(account_id)
        tz_name = _stat_tz(account.company_id)
        tz = pytz.timezone(tz_name)
        for table in ("mango_call_stat", "mango_call_stat_callback"):
            cr.execute(
                SQL(
                    "DELETE FROM %s WHERE account_id = %s AND date IN %s",
                    SQL.identifier(table),
                    account_id,
                    tuple(days),
                )
            )
        # UTC bounds let the index on start_time do the work; the local date
        # then picks the exact days.
        low = tz.localize(datetime.combine(days[0], time.min)).astimezone(pytz.UTC)
        high = tz.localize(
            datetime.combine(days[-1] + timedelta(days=1), time.min)
        ).astimezone(pytz.UTC)
        where = SQL(
            """c.account_id = %s AND c.start_time >= %s AND c.start_time < %s
               AND (c.start_time AT TIME ZONE 'UTC' AT TIME ZONE %s)::date IN %s""",
            account_id,
            low.replace(tzinfo=None),
            high.replace(tzinfo=None),
            tz_name,
            tuple(days),
        )
        cr.execute(self._mango_write_days_sql(where, tz_name))
        self._mango_refresh_periods(account_id, days)

    def _mango_invalidate_tables(self):
        self.invalidate_model()
        self.env["mango.call.stat.period"].invalidate_model()
        self.env["mango.call.stat.callback"].invalidate_model()

    @api.model
    def _mango_refresh(self, keys):
        """Recompute the rows of the given (account id, local date) pairs, and
        the call-back delays, weeks and months derived from them, in the
        current transaction (idempotent: a row is rewritten, never incremented).

        Exact only when the transaction reads what was committed before its
        locks (READ COMMITTED); the fold goes through
        ``_mango_refresh_marked`` in a transaction of its own.
        """
        self.env["mango.call"].flush_model()
        for account_id, days in sorted(self._mango_keys_by_account(keys).items()):
            self._mango_lock_days(account_id, days)
            self._mango_recompute_days(account_id, days)
        self._mango_invalidate_tables()

    @api.model
    def _mango_refresh_marked(self, keys=None):
        """Consume the markers (``mango.call.stat.dirty``) of ``keys`` — all of
        them when None — and recompute their days, in the current transaction.

        The markers are taken under the days' locks: a marker this transaction
        sees was committed together with its calls, so (in READ COMMITTED)
        the recomputation that follows reads those calls. Markers another
        refresh has consumed meanwhile are skipped, their days are current.

        :return: the (account id, date) pairs recomputed
        """
        cr = self.env.cr
        self.env["mango.call"].flush_model()
        if keys is None:
            cr.execute(
                SQL("SELECT DISTINCT account_id, date FROM mango_call_stat_dirty")
            )
            keys = cr.fetchall()
        done = set()
        for account_id, days in sorted(self._mango_keys_by_account(keys).items()):
            self._mango_lock_days(account_id, days)
            cr.execute(
                SQL(
                    "DELETE FROM mango_call_stat_dirty "
                    "WHERE account_id = %s AND date IN %s RETURNING date",
                    account_id,
                    tuple(sorted(days)),
                )
            )
            marked = {day for (day,) in cr.fetchall()}
            if marked:
                self._mango_recompute_days(account_id, marked)
                done.update((account_id, day) for day in marked)
        self._mango_invalidate_tables()
        return done

    @api.model
    def _mango_refresh_marked_now(self, keys=None):
        """Run ``_mango_refresh_marked`` in a transaction of its own, READ
        COMMITTED so that its reads follow its locks, retried on a
        serialization failure or a deadlock. A refresh that still fails
        leaves its markers for the cron.

        :return: whether the refresh committed
        """
        for attempt in range(1, REFRESH_ATTEMPTS + 1):
            try:
                with self.env.registry.cursor() as cr:
                    cr.execute(SQL("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    env["mango.call.stat"]._mango_refresh_marked(keys)
                return True
            except psycopg2.Error as error:
                if (
                    error.pgcode not in PG_CONCURRENCY_ERRORS_TO_RETRY
                    or attempt == REFRESH_ATTEMPTS
                ):
                    _logger.warning(
                        "Call statistics refresh failed, left to the cron: %s", error
                    )
                    return False
                _time.sleep(random.uniform(0.0, 0.05 * 2**attempt))
            except Exception:
                # Called after a commit: an error here must not reach the
                # worker whose work is already saved; the markers stay.
                _logger.exception("Call statistics refresh failed, left to the cron")
                return False
        return False

    @api.model
    def _mango_cron_refresh_marked(self):
        """Cron: refresh the days whose markers are still there (a refresh that
        failed after its fold, a process stopped between the two)."""
        self._mango_refresh_marked_now()

    @api.model
    def _mango_rebuild(self):
        """Recompute the whole table, its delays, weeks and months from the
        calls (safety net: cron, button)."""
        self.env["mango.call"].flush_model()
        cr = self.env.cr
        for table in (
            "mango_call_stat",
            "mango_call_stat_callback",
            "mango_call_stat_period",
        ):
            cr.execute(SQL("LOCK TABLE %s IN EXCLUSIVE MODE", SQL.identifier(table)))
            cr.execute(SQL("DELETE FROM %s", SQL.identifier(table)))
        accounts = self.env["mango.account"].sudo().with_context(active_test=False)
        for tz_name, group in (
            accounts.search([]).grouped(lambda a: _stat_tz(a.company_id)).items()
        ):
            where = SQL("c.account_id IN %s", tuple(group.ids))
            cr.execute(self._mango_write_days_sql(where, tz_name))
        for granularity, _label in GRANULARITIES:
            cr.execute(self._mango_period_insert_sql(granularity, SQL("TRUE")))
        self._mango_invalidate_tables()
        return True

    @api.model
    def _mango_cron_rebuild(self):
        self._mango_rebuild()

    @api.model
    def action_mango_rebuild(self):
        """Button of the dashboard: rebuild now (telephony administrators)."""
        if not self.env.user.has_group("mango_telephony.group_mango_admin"):
            raise AccessError(
                self.env._("Only telephony administrators rebuild the statistics.")
            )
        self.sudo()._mango_rebuild()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("Call statistics rebuilt from the call log."),
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    @api.model
    def _mango_keys_of_calls(self, calls):
        keys = set()
        tz_by_company = {}
        for call in calls:
            if not call.start_time:
                continue
            company = call.company_id
            if company.id not in tz_by_company:
                tz_by_company[company.id] = pytz.timezone(_stat_tz(company))
            local = pytz.UTC.localize(call.start_time).astimezone(
                tz_by_company[company.id]
            )
            keys.add((call.account_id.id, local.date()))
        return keys

    # ------------------------------------------------------------------
    # Dashboard
    # ------------------------------------------------------------------

    @api.model
    def _mango_period_domain(self, period, reference=None):
        if period not in PERIODS:
            raise ValueError(period)
        if period == "all":
            return [], False, False
        tz = pytz.timezone(self.env.user.tz or _stat_tz(self.env.company))
        today = reference or datetime.now(tz).date()
        if period == "day":
            start = today
        elif period == "week":
            start = today - timedelta(days=today.weekday())
        else:
            start = today.replace(day=1)
        return [("date", ">=", start), ("date", "<=", today)], start, today

    def _mango_metrics(self, values):
        counts = defaultdict(float, values)
        return {
            "calls": int(counts["call_count"]),
            "incoming": int(counts["incoming"]),
            "outgoing": int(counts["outgoing"]),
            "internal": int(counts["internal"]),
            "answered": int(counts["answered_count"]),
            "missed": int(counts["missed_count"]),
            "failed": int(counts["failed_count"]),
            "missed_pending": int(counts["missed_pending_count"]),
            "called_back": int(counts["called_back_count"]),
            "answered_rate": _ratio(
                counts["answered_count"], counts["call_count"], 100.0
            ),
            "avg_wait": _ratio(counts["wait_total"], counts["answered_count"]),
            "avg_talk": _ratio(counts["talk_total"], counts["answered_count"]),
            "avg_callback_time": _ratio(
                counts["callback_time_total"], counts["called_back_count"]
            ),
        }

    @api.model
    def _mango_rules_for(self, model):
        """The record rules of ``mango.call.stat`` for the current user as a
        domain on the companion ``model``, or None when a rule names a field
        that does not mean the same there (then the day rows answer instead)."""
        rules = self.env["ir.rule"]._compute_domain(self._name, "read")
        for leaf in rules:
            if not isinstance(leaf, (list, tuple)) or not isinstance(leaf[0], str):
                continue  # operators and constant leaves such as (1, "=", 1)
            if leaf[0].split(".", 1)[0] not in model._mango_rule_fields:
                return None
        return rules

    def _mango_grouped_sums(self, query, folded_directions, keys, sets):
        """Sum the counters of ``query`` for several grouping sets in one scan.

        :param query: ORM query on ``mango.call.stat`` or ``mango.call.stat.period``
        :param bool folded_directions: the table has one column per direction
            (periods) instead of a ``direction`` key (days)
        :param dict keys: key name -> SQL expression
        :param list sets: tuples of key names, ``()`` for the grand total
        :return: list of ``(names of the set, {name: value}, {counter: sum})``
        """
        table = query.table
        names = list(keys)
        expressions = [keys[name] for name in names]
        sums = [
            SQL("COALESCE(sum(%s), 0)", SQL.identifier(table, name))
            for name in COUNTERS
        ]
        for direction in DIRECTIONS:
            if folded_directions:
                sums.append(
                    SQL(
                        "COALESCE(sum(%s), 0)",
                        SQL.identifier(table, f"{direction}_count"),
                    )
                )
            else:
                sums.append(
                    SQL(
                        "COALESCE(sum(%s) FILTER (WHERE %s = %s), 0)",
                        SQL.identifier(table, "call_count"),
                        SQL.identifier(table, "direction"),
                        direction,
                    )
                )
        grouping_sets = SQL(", ").join(
            SQL("(%s)", SQL(", ").join(keys[name] for name in grouping_set))
            if grouping_set
            else SQL("()")
            for grouping_set in sets
        )
        self.env.cr.execute(
            SQL(
                "SELECT %s FROM %s WHERE %s GROUP BY GROUPING SETS (%s)",
                SQL(", ").join(
                    [SQL("GROUPING(%s)", expression) for expression in expressions]
                    + expressions
                    + sums
                ),
                query.from_clause,
                _where(query),
                grouping_sets,
            )
        )
        width = len(names)
        result = []
        for row in self.env.cr.fetchall():
            present = tuple(
                name for name, flag in zip(names, row[:width], strict=True) if not flag
            )
            values = dict(zip(names, row[width : 2 * width], strict=True))
            result.append(
                (
                    present,
                    {name: values[name] for name in present},
                    dict(zip((*COUNTERS, *DIRECTIONS), row[2 * width :], strict=True)),
                )
            )
        return result

    @api.readonly
    @api.model
    def mango_dashboard_data(self, period="week", group_by="user", interval="day"):
        """Figures of the statistics dashboard, from the reporting tables only.

        Over the whole history, the rows and totals come from the monthly
        totals and the time series from the weekly or monthly ones; a shorter
        period reads its day rows, rows, series and totals in one scan. The
        exact medians come from the delays table. The record rules of
        ``mango.call.stat`` apply to every table read.

        :param str period: ``day`` (today), ``week``, ``month`` (so far) or ``all``
        :param str group_by: ``user`` (employee) or ``line``
        :param str interval: bucket of the time series: ``day``, ``week``, ``month``
        :return: ``{"totals", "rows", "series", "period", "date_from", "date_to"}``;
            every block carries calls per direction, answered rate (%), average
            wait and talk (s), missed calls not called back and the median time to
            call back (s)
        """
        if group_by not in ("user", "line"):
            raise ValueError(group_by)
        if interval not in INTERVALS:
            raise ValueError(interval)
        self.check_access("read")
        domain, date_from, date_to = self._mango_period_domain(period)
        group_field = "user_id" if group_by == "user" else "line_number"
        Period = self.env["mango.call.stat.period"].sudo()
        period_rules = None if domain else self._mango_rules_for(Period)

        def day_keys(query):
            return {
                "group": SQL.identifier(query.table, group_field),
                "bucket": SQL(
                    "date_trunc(%s, %s)::date",
                    interval,
                    SQL.identifier(query.table, "date"),
                ),
            }

        def period_query(granularity):
            query = Period._search(
                domains.AND([period_rules, [("granularity", "=", granularity)]])
            )
            return query, {
                "group": SQL.identifier(query.table, group_field),
                "bucket": SQL.identifier(query.table, "date"),
            }

        if period_rules is None:
            query = self._search(domain)
            results = self._mango_grouped_sums(
                query, False, day_keys(query), [("group",), ("bucket",), ()]
            )
        elif interval == "month":
            query, keys = period_query("month")
            results = self._mango_grouped_sums(
                query, True, keys, [("group",), ("bucket",), ()]
            )
        else:
            query, keys = period_query("month")
            results = self._mango_grouped_sums(
                query, True, {"group": keys["group"]}, [("group",), ()]
            )
            if interval == "week":
                query, keys = period_query("week")
                results += self._mango_grouped_sums(
                    query, True, {"bucket": keys["bucket"]}, [("bucket",)]
                )
            else:
                query = self._search(domain)
                results += self._mango_grouped_sums(
                    query, False, {"bucket": day_keys(query)["bucket"]}, [("bucket",)]
                )
        rows, series, totals = {}, {}, {}
        for present, keys, values in results:
            if present == ("group",):
                rows[keys["group"]] = values
            elif present == ("bucket",):
                series[fields.Date.to_string(keys["bucket"])] = values
            else:
                totals = values
        counts = {key: values["called_back_count"] for key, values in rows.items()}
        counts[TOTAL] = totals.get("called_back_count", 0)
        medians = self._mango_medians(domain, group_field, counts)
        empty = 0 if group_by == "user" else ""
        if group_by == "user":
            users = self.env["res.users"].sudo().browse([k for k in rows if k])
            labels = {user.id: user.name for user in users}
            labels[None] = self.env._("Nobody")
        else:
            labels = {key: key or self.env._("No line") for key in rows}
        result_rows = [
            {
                "key": empty if key is None else key,
                "label": labels.get(key, key),
                **self._mango_metrics(values),
                "median_callback_time": medians.get(key),
            }
            for key, values in rows.items()
        ]
        result_rows.sort(key=lambda r: (-r["calls"], str(r["label"])))
        return {
            "period": period,
            "group_by": group_by,
            "interval": interval,
            "date_from": fields.Date.to_string(date_from) if date_from else False,
            "date_to": fields.Date.to_string(date_to) if date_to else False,
            "totals": {
                **self._mango_metrics(totals),
                "median_callback_time": medians.get(TOTAL),
            },
            "rows": result_rows,
            "series": [
                {"date": day, **self._mango_metrics(values)}
                for day, values in sorted(series.items())
            ],
        }

    @api.model
    def _mango_medians(self, domain, group_field, counts):
        """Exact median time to call back per group and overall (key ``TOTAL``),
        from the delay rows within ``domain`` and the record rules.

        :param dict counts: group key -> number of called-back calls in it, as
            the counters of the same snapshot say
        """
        Callback = self.env["mango.call.stat.callback"].sudo()
        rules = self._mango_rules_for(Callback)
        if rules is None:
            # A rule on a counter: keep the delays whose day row the rules let
            # through, the slow but faithful way.
            query = Callback._search(domain)
            days = self._search(domain)
            days.add_where(
                SQL(
                    " AND ".join(
                        f"%(day)s.{column} IS NOT DISTINCT FROM %(delay)s.{column}"
                        for column in (
                            "account_id",
                            "date",
                            "user_id",
                            "line_number",
                            "direction",
                        )
                    ),
                    day=SQL.identifier(days.table),
                    delay=SQL.identifier(query.table),
                )
            )
            query.add_where(SQL("EXISTS %s", days.subselect(SQL("1"))))
            return self._mango_medians_by_sort(query, group_field)
        query = Callback._search(domains.AND([rules, domain]))
        if counts.get(TOTAL, 0) <= SORT_MEDIAN_LIMIT:
            return self._mango_medians_by_sort(query, group_field)
        return self._mango_medians_by_rank(query, group_field, counts)

    def _mango_medians_by_sort(self, query, group_field):
        """Medians of a small set of delays: sort them once per grouping."""
        group_column = SQL.identifier(query.table, group_field)
        self.env.cr.execute(
            SQL(
                """
                SELECT GROUPING(%(grp)s), %(grp)s,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY %(delay)s)
                  FROM %(from)s
                 WHERE %(where)s
              GROUP BY GROUPING SETS ((%(grp)s), ())
                """,
                grp=group_column,
                delay=SQL.identifier(query.table, "delay"),
                where=_where(query),
                **{"from": query.from_clause},
            )
        )
        return {
            TOTAL if is_total else key: round(median, 1)
            for is_total, key, median in self.env.cr.fetchall()
            if median is not None
        }

    def _mango_medians_by_rank(self, query, group_field, counts):
        """Medians of many delays: the middle entries of each group, read by
        walking the (scope, group, delay) index to rank (n - 1) / 2 instead of
        sorting everything. Exact: an even count averages the two middle ones,
        like ``percentile_cont(0.5)``."""
        group_column = SQL.identifier(query.table, group_field)
        delay = SQL.identifier(query.table, "delay")
        wanted, selects = [], []
        for key, count in counts.items():
            if not count:
                continue
            if key == TOTAL:
                condition = SQL("TRUE")
            elif key is None:
                condition = SQL("%s IS NULL", group_column)
            else:
                condition = SQL("%s = %s", group_column, key)
            middle = 2 - count % 2
            wanted.append((key, middle))
            selects.append(
                SQL(
                    "ARRAY(SELECT %s FROM %s WHERE %s AND %s "
                    "ORDER BY %s OFFSET %s LIMIT %s)",
                    delay,
                    query.from_clause,
                    _where(query),
                    condition,
                    delay,
                    (count - 1) // 2,
                    middle,
                )
            )
        if not selects:
            return {}
        self.env.cr.execute(SQL("SELECT %s", SQL(", ").join(selects)))
        medians = {}
        for (key, middle), values in zip(wanted, self.env.cr.fetchone(), strict=True):
            if len(values) == middle:
                medians[key] = round(sum(values) / middle, 1)
        return medians


class MangoCall(models.Model):
    _inherit = "mango.call"

    def _mango_step_refresh_statistics(self, previous):
        """Mark the days of finished calls for a statistics refresh: the
        markers commit with the calls, the refresh runs right after the commit
        in a transaction of its own (see ``mango_call_stat_dirty.py``)."""
        finished = self.filtered(
            lambda c: (
                c.status in FINISHED_STATUSES
                or (previous.get(c.id) or {}).get("status") in FINISHED_STATUSES
            )
        )
        if finished:
            # A call that reached a customer closes that customer's earlier missed
            # calls (their "not called back" count changes on their own day).
            called_back = self.sudo().search([("callback_call_id", "in", finished.ids)])
            Stat = self.env["mango.call.stat"].sudo()
            keys = Stat._mango_keys_of_calls(finished | called_back)
            # Marked and refreshed once per transaction: a worker batch (or a
            # replay) of many calls of one day recomputes that day once.
            cr = self.env.cr
            if STAT_KEYS not in cr.precommit.data:
                pending = cr.precommit.data[STAT_KEYS] = set()
                Dirty = self.env["mango.call.stat.dirty"].sudo()
                cr.precommit.add(lambda: Dirty._mango_mark(pending))
                cr.postcommit.add(lambda: Stat._mango_refresh_marked_now(pending))
            cr.precommit.data[STAT_KEYS].update(keys)
