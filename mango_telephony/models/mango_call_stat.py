"""Call statistics pre-aggregated per account × day × employee × line × direction.

Grouping a million ``mango.call`` rows on every dashboard load is too slow, so
``mango.call.stat`` keeps one row per key with additive counters, with weekly
and monthly totals and the call-back delays beside them
(``mango_call_stat_rollup.py``).

Keeping them current costs each finished call the same whatever the size of the
log. Recomputing a call's whole day would cost as many calls as the day holds,
and days grow with the log; blindly adding the call would count a re-fold twice.
So a ledger (``mango_call_stat_contribution.py``) holds what each call counts
now; refreshing a call applies the difference between its committed row and its
ledger row to one day row, its weeks and month and its delay row, under the
call's lock and then the days' (``_mango_refresh_calls``). A refresh that finds
nothing changed changes nothing, so running it twice, or after a re-fold,
changes nothing, and a full rebuild (which writes the ledger from the calls and
sums the rows from it) gives the same tables.
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
from .mango_call import DIRECTIONS as CALL_DIRECTIONS
from .mango_call_stat_contribution import (
    COUNT_COLUMNS,
    KEY_COLUMNS,
    TOTAL_COLUMNS,
    contributions_sql,
)
from .mango_call_stat_rollup import (
    GRANULARITIES,
    WEEK_GRANULARITIES,
    SummedPeriods,
    delay_bucket,
    delay_bucket_sql,
    delay_bucket_width,
    mango_derive_once,
    period_bucket_sql,
    period_start,
)

_logger = logging.getLogger(__name__)

STAT_KEYS = "mango.call.stat.keys"
# Tries of a refresh that meets a serialization failure or a deadlock.
REFRESH_ATTEMPTS = 5
# Calls refreshed per transaction after a fold or by the cron: each holds its
# calls' locks and their days' until it commits.
REFRESH_CHUNK = 100
DEFAULT_TZ = MOSCOW_TZ_NAME
# ratio field -> (numerator, denominator, factor): recomputed for every group from
# the summed counters, since an average of per-row ratios would be wrong.
RATIO_FIELDS = {
    "answered_rate": ("answered_count", "call_count", 100.0),
    "avg_wait": ("wait_total", "answered_count", 1.0),
    "avg_talk": ("talk_total", "answered_count", 1.0),
    "avg_callback_time": ("callback_time_total", "called_back_count", 1.0),
}
# The counters of a day row, in the ledger's order (counts, then time totals).
COUNTERS = COUNT_COLUMNS + TOTAL_COLUMNS
DIRECTIONS = tuple(key for key, _label in CALL_DIRECTIONS)
TOTAL = "__total__"
# Up to this many delays in scope, sorting them is cheaper than one index walk
# per group (measured: 20k delays sort in a few ms).
SORT_MEDIAN_LIMIT = 20000
PERIODS = ("day", "week", "month", "all")
SECONDS = (16, 0)
# The key of a band of call-back delays (mango.call.stat.callback.bucket).
BUCKET_KEY_COLUMNS = (
    "account_id",
    "company_id",
    "user_id",
    "line_number",
    "direction",
    "bucket",
)
# Groupings the weekly and monthly totals answer (see _mango_read_group_periods).
PERIOD_KEYS = ("user_id", "line_number", "company_id", "account_id")
PERIOD_GRANULARITY = {
    "week": "week",
    "month": "month",
    "quarter": "month",
    "year": "month",
}
INTERVALS = ("day", "week", "month")
# The key of a week or month row.
PERIOD_KEY_COLUMNS = (
    "granularity",
    "date",
    "account_id",
    "company_id",
    "user_id",
    "line_number",
)
RATIO_COLUMNS = ("answered_rate", "avg_wait", "avg_talk", "avg_callback_time")


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


def _ratios_sql(value):
    """The stored ratios of a day row, ``[(column, SQL)]``, from its counters
    (``value(name)``: SQL of a counter's value). One definition for the
    rebuild's rows and a refresh's changed rows, so that both round alike."""

    def quotient(numerator, denominator, factor=""):
        return SQL(
            "CASE WHEN %s > 0 THEN round(%s::numeric %s/ %s, 2) END",
            value(denominator),
            value(numerator),
            SQL(factor),
            value(denominator),
        )

    return [
        ("answered_rate", quotient("answered_count", "call_count", "* 100.0 ")),
        ("avg_wait", quotient("wait_total", "answered_count")),
        ("avg_talk", quotient("talk_total", "answered_count")),
        ("avg_callback_time", quotient("callback_time_total", "called_back_count")),
    ]


def _typed(name, value):
    """SQL of a counter's value in its column's type."""
    return SQL("%s::numeric" if name in TOTAL_COLUMNS else "%s::integer", value)


def _plus(name, value):
    """SQL of column ``name`` plus ``value``."""
    return SQL("(%s + %s)", SQL.identifier(name), _typed(name, value))


def _day_deltas(old, new, changed):
    """What the ``changed`` calls' move from their ``old`` to their ``new``
    contributions (call id -> key columns then counters) changes per day key:
    ``{key: [counter deltas]}``, keys whose deltas cancel left out."""
    width = len(KEY_COLUMNS)
    days = defaultdict(lambda: [0] * len(COUNTERS))
    for call_id in changed:
        for contribution, sign in ((old.get(call_id), -1), (new.get(call_id), 1)):
            if contribution:
                sums = days[contribution[:width]]
                for index, value in enumerate(contribution[width:]):
                    sums[index] += sign * value
    return {key: delta for key, delta in days.items() if any(delta)}


def _key_where(columns, key):
    """SQL condition selecting the row of ``key`` (values of ``columns``, None
    for an empty one) the way an index can."""
    return SQL(" AND ").join(
        SQL("%s IS NULL", SQL.identifier(name))
        if value is None
        else SQL("%s = %s", SQL.identifier(name), value)
        for name, value in zip(columns, key, strict=True)
    )


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


def _orders_all(order, groupby):
    """Whether ``order`` sorts every field of ``groupby`` (and is one the
    totals can follow): then reading the grouping with others, sorted by the
    same terms, gives its rows in the same order as reading it alone."""
    named = {term.split()[0] for term in (order or "").split(",") if term.strip()}
    return set(groupby) <= named and _period_order(order, groupby) is not None


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
    # Its pivots' groups: each value formatted once (group_labels.py).
    _inherit = ["mango.pivot.groups"]
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
        # A refresh finds the day row of a key among its account's day.
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_account_date_idx "
                "ON mango_call_stat (account_id, date)"
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
        answers = self._mango_read_grouping_sets_periods(
            domain, grouping_sets, aggregates, order
        )
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
        request = self._mango_period_request(domain, groupby, aggregates, having)
        order = _period_order(order, groupby)
        if request is None or order is None:
            return None
        rows = (
            self._mango_periods_summed(request, [groupby])
            .sudo()
            ._read_group(
                [] if groupby else request["domain"],
                groupby,
                request["specs"],
                offset=offset,
                limit=limit,
                order=order or None,
            )
        )
        return self._mango_period_rows(rows, groupby, request)

    def _mango_read_grouping_sets_periods(
        self, domain, grouping_sets, aggregates, order
    ):
        """Odoo 19.0's ``_read_grouping_sets`` of the weekly or monthly totals:
        for each of ``grouping_sets``, the rows ``_read_grouping_sets`` would
        give it (as ``_mango_read_group_periods``), or None when the day rows
        are needed. The groupings of one granularity are read in one query.
        """
        order_within = _orders_within(order, grouping_sets)

        def alone(grouping):
            return self._mango_read_group_periods(
                domain, grouping, aggregates, (), 0, None, order_within(grouping)
            )

        if not order:
            # Without an order, Odoo sorts grouping sets by all their fields
            # at once, by id: each grouping is read alone, as before.
            return [alone(grouping) for grouping in grouping_sets]
        requests = [
            self._mango_period_request(domain, grouping, aggregates, ())
            for grouping in grouping_sets
        ]
        answers = [None] * len(grouping_sets)
        by_granularity = defaultdict(list)
        for index, (grouping, request) in enumerate(
            zip(grouping_sets, requests, strict=True)
        ):
            if request is None:
                continue
            if _orders_all(order_within(grouping), grouping):
                by_granularity[request["granularity"]].append(index)
            else:
                # Its rows' order is not fully given: read alone, as the
                # day rows would order it.
                answers[index] = alone(grouping)
        for indexes in by_granularity.values():
            sets = list(dict.fromkeys(tuple(grouping_sets[i]) for i in indexes))
            request = dict(requests[indexes[0]])
            specs = list(
                dict.fromkeys(spec for i in indexes for spec in requests[i]["specs"])
            )
            request["specs"] = specs
            union = {spec for grouping in sets for spec in grouping}
            period_order = _period_order(order_within(union), list(union))
            if period_order is None:
                continue
            results = (
                self._mango_periods_summed(request, sets)
                .sudo()
                ._read_grouping_sets(
                    [] if union else request["domain"],
                    sets,
                    specs,
                    order=period_order or None,
                )
            )
            rows_of = dict(zip(sets, results, strict=True))
            for index in indexes:
                grouping = tuple(grouping_sets[index])
                answers[index] = self._mango_period_rows(
                    rows_of[grouping], grouping, {**requests[index], "specs": specs}
                )
        return answers

    def _mango_period_request(self, domain, groupby, aggregates, having):
        """What reading ``groupby`` from the weekly or monthly totals takes
        (``granularity``, the totals' ``domain`` with the rules, the ``plans``
        of the measures and the ``specs`` they read), or None when the totals
        cannot answer it."""
        granularity = None if having else _period_granularity(groupby)
        # The ORM's weeks start on the language's first day: the weekly totals
        # starting that day answer (a language starting its weeks on another
        # day than Odoo's own languages do is answered from the day rows).
        if granularity == "week":
            granularity = WEEK_GRANULARITIES.get(str(get_lang(self.env).week_start))
        plans = _period_plans(aggregates)
        if (
            granularity is None
            or plans is None
            or not self._mango_domain_fits_periods(domain, granularity)
        ):
            return None
        rules = self._mango_rules_for(self.env["mango.call.stat.period"])
        if rules is None:
            return None
        self.check_access("read")
        specs = []
        for plan in plans:
            specs.extend(spec for spec in plan[1:3] if spec not in specs)
        return {
            "granularity": granularity,
            "domain": domains.AND([domain, rules, [("granularity", "=", granularity)]]),
            "plans": plans,
            "specs": specs,
        }

    def _mango_periods_summed(self, request, grouping_sets):
        """The totals (``mango.call.stat.period``) to group by
        ``grouping_sets``: their rows in the request's domain summed per value
        of the grouped fields first (``mango.call.stat.period._table_sql``),
        so that Odoo joins and sorts a third of them; as they are when nothing
        is grouped."""
        Period = self.env["mango.call.stat.period"]
        columns = {
            spec.split(":")[0] for grouping in grouping_sets for spec in grouping
        }
        if not columns:
            return Period
        return Period.sudo().with_context(
            mango_period_groups=SummedPeriods(
                request["domain"],
                tuple(sorted(columns)),
                tuple(spec.split(":")[0] for spec in request["specs"]),
            )
        )

    def _mango_period_rows(self, rows, groupby, request):
        """The rows the day rows would give, from the rows of the totals read
        with the request's specs: the grouped values in this environment, then
        each measure (a sum, or a ratio of two sums)."""
        specs, plans = request["specs"], request["plans"]
        width = len(groupby)
        result = []
        # Each employee's record moved to the caller's environment once, not
        # once per row (thousands of rows, a few dozen employees), found by
        # its ids: hashing a record costs a frozenset each time.
        in_env = {}

        def with_env(value):
            if not isinstance(value, models.BaseModel):
                return value
            key = (value._name, value._ids)
            moved = in_env.get(key)
            if moved is None:
                moved = in_env[key] = value.with_env(self.env)
            return moved

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

    @api.model
    def _mango_tz_sql(self):
        """SQL of the statistics' time zone name of ``c``'s account (a call of
        ``mango_call c``), for every account."""
        accounts = self.env["mango.account"].sudo().with_context(active_test=False)
        whens = [
            SQL("WHEN %s THEN %s", account.id, _stat_tz(account.company_id))
            for account in accounts.search([])
        ]
        if not whens:
            return SQL("%s", DEFAULT_TZ)
        return SQL(
            "(CASE c.account_id %s ELSE %s END)", SQL(" ").join(whens), DEFAULT_TZ
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

    def _mango_lock_days(self, days_by_account):
        """Take the transaction locks of the days of each account and of the
        weeks and months holding them, always in the same order (accounts
        sorted; per account its days, then its periods, sorted), so that two
        refreshes take turns on a day and never deadlock.

        :param dict days_by_account: account id -> set of local dates
        """
        names = []
        for account_id, days in sorted(days_by_account.items()):
            names += [f"{account_id}:{day}" for day in sorted(days)]
            # Days of one week or month refreshed by two workers at once: the
            # week and month rows are changed by one of them at a time.
            for granularity, _label in GRANULARITIES:
                names += sorted(
                    {
                        f"{account_id}:{granularity}:{period_start(granularity, day)}"
                        for day in days
                    }
                )
        if names:
            self.env.cr.execute(
                SQL(
                    "SELECT pg_advisory_xact_lock(hashtext(name)) FROM "
                    "(SELECT name FROM unnest(%s::text[]) WITH ORDINALITY "
                    "AS t(name, position) ORDER BY position) AS ordered",
                    [f"mango.call.stat:{name}" for name in names],
                )
            )

    def _mango_lock_calls(self, call_ids):
        """Take the transaction locks of ``call_ids``, sorted: the ledger row of
        a call is read and changed by one refresh at a time. Always taken
        before the days' locks."""
        self.env.cr.execute(
            SQL(
                "SELECT pg_advisory_xact_lock(hashtext('mango.call.stat:call'), id) "
                "FROM (SELECT unnest(%s::int[]) AS id ORDER BY 1) AS ordered",
                sorted(call_ids),
            )
        )

    def _mango_apply_day_delta(self, key, delta):
        """Add ``delta`` (counters, in ``COUNTERS`` order) to the day row of
        ``key``, creating or deleting it as its call count becomes positive or
        zero; its ratios follow its new counters (the caller holds the day's
        lock).

        One row only, should the key have two (a deleted employee's rows
        emptied by the foreign key until the next rebuild merges them): the
        sums stay exact.

        :return: +1 when the row appeared, -1 when it went, else 0
        """
        cr = self.env.cr
        where = _key_where(KEY_COLUMNS, key)
        cr.execute(
            SQL(
                "UPDATE mango_call_stat SET %s, %s WHERE id = "
                "(SELECT id FROM mango_call_stat WHERE %s ORDER BY id LIMIT 1) "
                "RETURNING id, call_count",
                SQL(", ").join(
                    SQL("%s = %s", SQL.identifier(name), _plus(name, value))
                    for name, value in zip(COUNTERS, delta, strict=True)
                ),
                SQL(", ").join(
                    SQL("%s = %s", SQL.identifier(name), expression)
                    for name, expression in _ratios_sql(
                        lambda name: _plus(name, delta[COUNTERS.index(name)])
                    )
                ),
                where,
            )
        )
        rows = cr.fetchall()
        if rows and rows[0][1] == 0:
            cr.execute(SQL("DELETE FROM mango_call_stat WHERE id = %s", rows[0][0]))
            return -1
        if rows:
            return 0
        if delta[0] <= 0:
            _logger.warning(
                "Call statistics: no day row %s to take %s from; rebuild them",
                key,
                delta,
            )
            return 0

        def value(name):
            return _typed(name, delta[COUNTERS.index(name)])

        cr.execute(
            SQL(
                "INSERT INTO mango_call_stat (%s, %s, %s) VALUES (%s, %s, %s)",
                SQL(", ").join(SQL.identifier(name) for name in KEY_COLUMNS),
                SQL(", ").join(SQL.identifier(name) for name in COUNTERS),
                SQL(", ").join(SQL.identifier(name) for name in RATIO_COLUMNS),
                SQL(", ").join(SQL("%s", part) for part in key),
                SQL(", ").join(value(name) for name in COUNTERS),
                SQL(", ").join(expression for _name, expression in _ratios_sql(value)),
            )
        )
        return 1

    def _mango_apply_period_delta(self, key, delta):
        """Add ``delta`` (counters, calls per direction, day rows) to the week
        or month row of ``key`` (granularity, first day, account, company,
        employee, line), creating or deleting it as it starts or stops holding
        day rows (the caller holds the period's lock)."""
        cr = self.env.cr
        names = (*COUNTERS, *(f"{d}_count" for d in DIRECTIONS), "row_count")
        where = _key_where(PERIOD_KEY_COLUMNS, key)
        cr.execute(
            SQL(
                "UPDATE mango_call_stat_period SET %s WHERE id = "
                "(SELECT id FROM mango_call_stat_period WHERE %s ORDER BY id LIMIT 1) "
                "RETURNING id, row_count",
                SQL(", ").join(
                    SQL("%s = %s", SQL.identifier(name), _plus(name, value))
                    for name, value in zip(names, delta, strict=True)
                ),
                where,
            )
        )
        rows = cr.fetchall()
        if rows and rows[0][1] == 0:
            cr.execute(
                SQL("DELETE FROM mango_call_stat_period WHERE id = %s", rows[0][0])
            )
        elif not rows:
            if delta[-1] <= 0:
                _logger.warning(
                    "Call statistics: no period row %s to take %s from; rebuild them",
                    key,
                    delta,
                )
                return
            cr.execute(
                SQL(
                    "INSERT INTO mango_call_stat_period (%s, %s) VALUES (%s, %s)",
                    SQL(", ").join(SQL.identifier(n) for n in PERIOD_KEY_COLUMNS),
                    SQL(", ").join(SQL.identifier(n) for n in names),
                    SQL(", ").join(SQL("%s", part) for part in key),
                    SQL(", ").join(
                        _typed(name, value)
                        for name, value in zip(names, delta, strict=True)
                    ),
                )
            )

    @api.model
    def _mango_refresh_calls(self, call_ids):
        """Bring the statistics of ``call_ids`` up to date with the committed
        calls, in the current transaction, at a cost that does not grow with the
        call log: each call's contribution is computed from its row, compared
        with what the ledger (``mango.call.stat.contribution``) says it counts,
        and only the difference is applied to its day row, the three weeks and
        the month holding that day, and its call-back delay row.

        Under each call's lock (the ledger row is read and changed by one
        refresh at a time), then the locks of the days and periods changed
        (``_mango_lock_days``). Exact when the transaction reads what was
        committed before its locks (READ COMMITTED); idempotent: a call whose
        contribution has not changed changes nothing. Consumes the calls'
        markers.

        :return: the ids refreshed
        """
        cr = self.env.cr
        ids = sorted({int(call_id) for call_id in call_ids if call_id})
        if not ids:
            return set()
        self.env["mango.call"].flush_model()
        self._mango_lock_calls(ids)
        # Markers first, then the calls: a marker seen here was committed with
        # its call's change, which the next statement reads.
        cr.execute(
            SQL("DELETE FROM mango_call_stat_dirty WHERE call_id = ANY(%s)", ids)
        )
        columns = SQL(", ").join(
            SQL.identifier(name) for name in ("call_id", *KEY_COLUMNS, *COUNTERS)
        )
        # FOR UPDATE: a rebuild (which locks the ledger first) then waits for
        # this refresh, or this read waits for the rebuild's ledger.
        cr.execute(
            SQL(
                "SELECT %s FROM mango_call_stat_contribution "
                "WHERE call_id = ANY(%s) FOR UPDATE",
                columns,
                ids,
            )
        )
        old = {row[0]: row[1:] for row in cr.fetchall()}
        cr.execute(
            SQL(
                "SELECT %s FROM (%s) AS contribution",
                columns,
                contributions_sql(SQL("c.id = ANY(%s)", ids), self._mango_tz_sql()),
            )
        )
        new = {row[0]: row[1:] for row in cr.fetchall()}
        changed = [call_id for call_id in ids if old.get(call_id) != new.get(call_id)]
        if not changed:
            return set(ids)
        days = _day_deltas(old, new, changed)
        days_by_account = defaultdict(set)
        for key in days:
            days_by_account[key[1]].add(key[0])
        self._mango_lock_days(days_by_account)
        periods = defaultdict(lambda: [0] * (len(COUNTERS) + len(DIRECTIONS) + 1))
        for key, delta in days.items():
            appeared = self._mango_apply_day_delta(key, delta)
            day, account_id, company_id, user_id, line_number, direction = key
            for granularity, _label in GRANULARITIES:
                sums = periods[
                    (
                        granularity,
                        period_start(granularity, day),
                        account_id,
                        company_id,
                        user_id,
                        line_number,
                    )
                ]
                for index, value in enumerate(delta):
                    sums[index] += value
                if direction in DIRECTIONS:
                    sums[len(COUNTERS) + DIRECTIONS.index(direction)] += delta[0]
                sums[-1] += appeared
        for key, delta in periods.items():
            if any(delta):
                self._mango_apply_period_delta(key, delta)
        self._mango_replace_call_rows(old, new, changed)
        self._mango_invalidate_tables()
        return set(ids)

    def _mango_replace_call_rows(self, old, new, changed):
        """Replace the call-back delay rows (one per called-back call) and the
        ledger rows of the ``changed`` calls by their ``new`` contributions
        (the caller holds the calls' locks)."""
        cr = self.env.cr
        width = len(KEY_COLUMNS)
        columns = SQL(", ").join(
            SQL.identifier(name) for name in ("call_id", *KEY_COLUMNS, *COUNTERS)
        )
        called_back = COUNTERS.index("called_back_count") + width
        delayed = [
            call_id
            for call_id in changed
            if any(
                contribution and contribution[called_back]
                for contribution in (old.get(call_id), new.get(call_id))
            )
        ]
        # What the bands gain and lose, from the rows themselves.
        bands = defaultdict(int)
        band_of = KEY_COLUMNS.index("account_id")
        returning = SQL(", ").join(
            SQL.identifier(name) for name in (*KEY_COLUMNS[band_of:], "delay")
        )
        if delayed:
            cr.execute(
                SQL(
                    "DELETE FROM mango_call_stat_callback WHERE call_id = ANY(%s) "
                    "RETURNING %s",
                    delayed,
                    returning,
                )
            )
            for *key, delay in cr.fetchall():
                bands[(*key, delay_bucket(delay))] -= 1
        delays = [
            SQL(
                "(%s, %s, %s)",
                call_id,
                SQL(", ").join(SQL("%s", part) for part in new[call_id][:width]),
                int(new[call_id][width + COUNTERS.index("callback_time_total")]),
            )
            for call_id in delayed
            if call_id in new and new[call_id][called_back]
        ]
        if delays:
            cr.execute(
                SQL(
                    "INSERT INTO mango_call_stat_callback (call_id, %s, delay) "
                    "VALUES %s RETURNING %s",
                    SQL(", ").join(SQL.identifier(name) for name in KEY_COLUMNS),
                    SQL(", ").join(delays),
                    returning,
                )
            )
            for *key, delay in cr.fetchall():
                bands[(*key, delay_bucket(delay))] += 1
        self._mango_apply_band_deltas(
            {key: delta for key, delta in bands.items() if delta}
        )
        cr.execute(
            SQL(
                "DELETE FROM mango_call_stat_contribution WHERE call_id = ANY(%s)",
                changed,
            )
        )
        rows = [
            SQL(
                "(%s, %s, %s)",
                call_id,
                SQL(", ").join(SQL("%s", part) for part in new[call_id][:width]),
                SQL(", ").join(
                    _typed(name, value)
                    for name, value in zip(COUNTERS, new[call_id][width:], strict=True)
                ),
            )
            for call_id in changed
            if call_id in new
        ]
        if rows:
            cr.execute(
                SQL(
                    "INSERT INTO mango_call_stat_contribution (%s) VALUES %s",
                    columns,
                    SQL(", ").join(rows),
                )
            )

    def _mango_apply_band_deltas(self, deltas):
        """Add ``deltas`` (band key in ``BUCKET_KEY_COLUMNS`` order -> delays
        gained or lost) to the bands of call-back delays, creating or deleting
        a band as it starts or stops holding delays.

        A band is kept over the whole history, so two refreshes of different
        days may meet on it: each takes the bands' locks after its days' and
        in the same order, and changes a band only while holding its lock.
        """
        if not deltas:
            return
        cr = self.env.cr
        keys = sorted(deltas, key=lambda key: [(part is None, part) for part in key])
        cr.execute(
            SQL(
                "SELECT pg_advisory_xact_lock(hashtext(name)) FROM "
                "(SELECT name FROM unnest(%s::text[]) WITH ORDINALITY "
                "AS t(name, position) ORDER BY position) AS ordered",
                [f"mango.call.stat:band:{key}" for key in keys],
            )
        )
        for key in keys:
            delta = deltas[key]
            cr.execute(
                SQL(
                    "UPDATE mango_call_stat_callback_bucket "
                    "SET delay_count = delay_count + %s WHERE id = "
                    "(SELECT id FROM mango_call_stat_callback_bucket WHERE %s "
                    "ORDER BY id LIMIT 1) RETURNING id, delay_count",
                    delta,
                    _key_where(BUCKET_KEY_COLUMNS, key),
                )
            )
            rows = cr.fetchall()
            if rows and rows[0][1] <= 0:
                cr.execute(
                    SQL(
                        "DELETE FROM mango_call_stat_callback_bucket WHERE id = %s",
                        rows[0][0],
                    )
                )
            elif not rows:
                if delta < 0:
                    _logger.warning(
                        "Call statistics: no band of delays %s to take %s from; "
                        "rebuild them",
                        key,
                        -delta,
                    )
                    continue
                cr.execute(
                    SQL(
                        "INSERT INTO mango_call_stat_callback_bucket "
                        "(%s, delay_count) VALUES (%s, %s)",
                        SQL(", ").join(SQL.identifier(n) for n in BUCKET_KEY_COLUMNS),
                        SQL(", ").join(SQL("%s", part) for part in key),
                        delta,
                    )
                )

    def _mango_bucket_insert_sql(self):
        """SQL counting every call-back delay into its band (rebuild, upgrade)."""
        keys = SQL(", ").join(
            SQL.identifier(name) for name in BUCKET_KEY_COLUMNS if name != "bucket"
        )
        return SQL(
            """
            INSERT INTO mango_call_stat_callback_bucket (%(keys)s, bucket, delay_count)
            SELECT %(keys)s, %(bucket)s, count(*)
              FROM mango_call_stat_callback
          GROUP BY %(keys)s, 6
            """,
            keys=keys,
            bucket=delay_bucket_sql(SQL.identifier("delay")),
        )

    @api.model
    def _mango_calls_of_days(self, keys):
        """Ids of the calls the given (account id, local date) pairs count, or
        counted when last refreshed (a call since moved or no longer finished).
        Reads every call of those days: for a day marker and
        ``_mango_refresh`` only, never for a fold."""
        self.env["mango.call"].flush_model()
        cr = self.env.cr
        ids = set()
        for account_id, days in sorted(self._mango_keys_by_account(keys).items()):
            days = sorted(days)
            account = self.env["mango.account"].sudo().browse(account_id)
            tz_name = _stat_tz(account.company_id)
            tz = pytz.timezone(tz_name)
            # UTC bounds let the index on start_time do the work; the local
            # date then picks the exact days.
            low = tz.localize(datetime.combine(days[0], time.min)).astimezone(pytz.UTC)
            high = tz.localize(
                datetime.combine(days[-1] + timedelta(days=1), time.min)
            ).astimezone(pytz.UTC)
            cr.execute(
                SQL(
                    """
                    SELECT c.id FROM mango_call c
                     WHERE c.account_id = %s
                       AND c.start_time >= %s AND c.start_time < %s
                       AND (c.start_time AT TIME ZONE 'UTC' AT TIME ZONE %s)::date
                           IN %s
                     UNION
                    SELECT call_id FROM mango_call_stat_contribution
                     WHERE account_id = %s AND date IN %s
                    """,
                    account_id,
                    low.replace(tzinfo=None),
                    high.replace(tzinfo=None),
                    tz_name,
                    tuple(days),
                    account_id,
                    tuple(days),
                )
            )
            ids.update(call_id for (call_id,) in cr.fetchall())
        return ids

    @staticmethod
    def _mango_keys_by_account(keys):
        by_account = defaultdict(set)
        for account_id, day in keys:
            if account_id and day:
                by_account[account_id].add(day)
        return by_account

    def _mango_invalidate_tables(self):
        self.invalidate_model()
        self.env["mango.call.stat.period"].invalidate_model()
        self.env["mango.call.stat.callback"].invalidate_model()
        self.env["mango.call.stat.callback.bucket"].invalidate_model()
        self.env["mango.call.stat.contribution"].invalidate_model()

    @api.model
    def _mango_refresh(self, keys):
        """Refresh every call of the given (account id, local date) pairs (and
        what they count in their weeks, months and delays) in the current
        transaction; idempotent (see ``_mango_refresh_calls``)."""
        ids = self._mango_calls_of_days(keys)
        self._mango_refresh_calls(ids)
        self._mango_invalidate_tables()

    @api.model
    def _mango_refresh_day_markers(self):
        """Consume the day markers (a call id-less ``mango.call.stat.dirty``:
        left by a version that marked days) by refreshing every call of their
        days, in the current transaction.

        :return: the ids refreshed
        """
        cr = self.env.cr
        cr.execute(
            SQL(
                "SELECT id, account_id, date FROM mango_call_stat_dirty "
                "WHERE call_id IS NULL"
            )
        )
        markers = cr.fetchall()
        if not markers:
            return set()
        ids = self._mango_calls_of_days(
            {(account, day) for _id, account, day in markers}
        )
        done = self._mango_refresh_calls(ids)
        cr.execute(
            SQL(
                "DELETE FROM mango_call_stat_dirty WHERE id IN %s",
                tuple(marker_id for marker_id, _account, _day in markers),
            )
        )
        return done

    @api.model
    def _mango_refresh_marked(self, call_ids=None):
        """Refresh the marked calls (``mango.call.stat.dirty``) among
        ``call_ids`` — every marked call and day when None — in the current
        transaction (see ``_mango_refresh_calls``: under the calls' locks, the
        markers are consumed before the calls are read, so a marker this
        transaction sees was committed together with its call's change).

        :return: the ids refreshed
        """
        cr = self.env.cr
        self.env["mango.call"].flush_model()
        done = set()
        if call_ids is None:
            done = self._mango_refresh_day_markers()
            cr.execute(
                SQL(
                    "SELECT DISTINCT call_id FROM mango_call_stat_dirty "
                    "WHERE call_id IS NOT NULL"
                )
            )
            call_ids = [call_id for (call_id,) in cr.fetchall()]
        done |= self._mango_refresh_calls(call_ids)
        self._mango_invalidate_tables()
        return done

    @api.model
    def _mango_refresh_in_own_transaction(self, method, *args):
        """Run ``method`` of this model in a transaction of its own, READ
        COMMITTED so that its reads follow its locks, retried on a
        serialization failure or a deadlock.

        :return: whether it committed
        """
        for attempt in range(1, REFRESH_ATTEMPTS + 1):
            try:
                with self.env.registry.cursor() as cr:
                    cr.execute(SQL("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    getattr(env["mango.call.stat"], method)(*args)
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
    def _mango_refresh_marked_now(self, call_ids=None):
        """Refresh the marked calls among ``call_ids`` (every marked call and
        day when None), ``REFRESH_CHUNK`` calls per transaction of their own
        (``_mango_refresh_in_own_transaction``), so that a large batch never
        holds thousands of locks. A chunk that still fails leaves its markers
        for the cron.

        :return: whether every chunk committed
        """
        ok = True
        if call_ids is None:
            ok = self._mango_refresh_in_own_transaction("_mango_refresh_day_markers")
            after = 0
            while True:
                with self.env.registry.cursor() as cr:
                    cr.execute(
                        SQL(
                            "SELECT DISTINCT call_id FROM mango_call_stat_dirty "
                            "WHERE call_id > %s ORDER BY call_id LIMIT %s",
                            after,
                            REFRESH_CHUNK,
                        )
                    )
                    chunk = [call_id for (call_id,) in cr.fetchall()]
                if not chunk:
                    return ok
                ok = (
                    self._mango_refresh_in_own_transaction(
                        "_mango_refresh_marked", chunk
                    )
                    and ok
                )
                after = chunk[-1]
        ids = sorted(set(call_ids))
        for start in range(0, len(ids), REFRESH_CHUNK):
            ok = (
                self._mango_refresh_in_own_transaction(
                    "_mango_refresh_marked", ids[start : start + REFRESH_CHUNK]
                )
                and ok
            )
        return ok

    @api.model
    def _mango_cron_refresh_marked(self):
        """Cron: refresh the calls and days whose markers are still there (a
        refresh that failed after its fold, a process stopped between the two)."""
        self._mango_refresh_marked_now()

    @api.model
    def _mango_rebuild(self):
        """Recompute the whole table, its ledger, delays, weeks and months from
        the calls (safety net: cron, button; the upgrade that adds the ledger).

        The ledger is written first, from the calls, with the same SQL as the
        refresh of one call (``contributions_sql``); the day rows and delays
        are then read from the ledger, the weeks and months from the day rows:
        a refresh applying differences to them ends on the same figures.
        """
        self.env["mango.call"].flush_model()
        cr = self.env.cr
        # The ledger first: a refresh reads it first (FOR UPDATE), so that one
        # of the two waits for the other before touching anything else. Emptied
        # by TRUNCATE (one row per call: deleting them one by one would cost
        # more than writing them); only a refresh reads it, and waits.
        cr.execute(SQL("TRUNCATE mango_call_stat_contribution"))
        for table in (
            "mango_call_stat",
            "mango_call_stat_callback",
            "mango_call_stat_callback_bucket",
            "mango_call_stat_period",
        ):
            cr.execute(SQL("LOCK TABLE %s IN EXCLUSIVE MODE", SQL.identifier(table)))
            cr.execute(SQL("DELETE FROM %s", SQL.identifier(table)))
        self._mango_fill_ledger()
        keys = SQL(", ").join(SQL.identifier(name) for name in KEY_COLUMNS)
        cr.execute(
            SQL(
                """
                INSERT INTO mango_call_stat (%(keys)s, %(counters)s, %(ratios)s)
                SELECT %(keys)s, %(counters)s, %(ratio_values)s
                  FROM (SELECT %(keys)s, %(sums)s
                          FROM mango_call_stat_contribution
                      GROUP BY %(keys)s) AS agg
                 -- The rows of a day side by side: the weeks and months summed
                 -- from them read a few pages, not one per row.
              ORDER BY date
                """,
                keys=keys,
                counters=SQL(", ").join(SQL.identifier(name) for name in COUNTERS),
                ratios=SQL(", ").join(SQL.identifier(name) for name in RATIO_COLUMNS),
                ratio_values=SQL(", ").join(
                    expression
                    for _name, expression in _ratios_sql(
                        lambda name: SQL.identifier("agg", name)
                    )
                ),
                sums=SQL(", ").join(
                    SQL("sum(%s) AS %s", SQL.identifier(name), SQL.identifier(name))
                    for name in COUNTERS
                ),
            )
        )
        cr.execute(
            SQL(
                """
                INSERT INTO mango_call_stat_callback (call_id, %(keys)s, delay)
                SELECT call_id, %(keys)s, callback_time_total::integer
                  FROM mango_call_stat_contribution
                 WHERE called_back_count = 1
              ORDER BY date
                """,
                keys=keys,
            )
        )
        cr.execute(self._mango_bucket_insert_sql())
        for granularity, _label in GRANULARITIES:
            cr.execute(self._mango_period_insert_sql(granularity, SQL("TRUE")))
        self._mango_invalidate_tables()
        return True

    def _mango_fill_ledger(self):
        """Write the (emptied) ledger from the calls, one row per finished
        call, its indexes set aside meanwhile and built again after: one
        sorted build of each costs a fraction of inserting ten million rows
        into it one by one. (Its foreign keys stay: dropping one would lock the
        users' or accounts' table for the whole rebuild.)"""
        cr = self.env.cr
        table = "mango_call_stat_contribution"
        cr.execute(
            SQL(
                """
                SELECT indexname, indexdef FROM pg_indexes
                 WHERE schemaname = current_schema() AND tablename = %s
                   AND indexname NOT IN (SELECT conname FROM pg_constraint
                                          WHERE conrelid = %s::regclass)
              ORDER BY indexname
                """,
                table,
                table,
            )
        )
        indexes = cr.fetchall()
        for name, _definition in indexes:
            cr.execute(SQL("DROP INDEX %s", SQL.identifier(name)))
        cr.execute(
            SQL(
                "INSERT INTO %s (%s) %s",
                SQL.identifier(table),
                SQL(", ").join(
                    SQL.identifier(name)
                    for name in ("call_id", *KEY_COLUMNS, *COUNTERS)
                ),
                contributions_sql(SQL("TRUE"), self._mango_tz_sql()),
            )
        )
        for _name, definition in indexes:
            cr.execute(SQL(definition))

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
        if not domain:
            Bucket = self.env["mango.call.stat.callback.bucket"].sudo()
            bucket_rules = self._mango_rules_for(Bucket)
            if bucket_rules is not None:
                return self._mango_medians_by_band(
                    Bucket._search(bucket_rules), query, group_field
                )
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

    def _mango_medians_by_band(self, bands, query, group_field):
        """Medians of the whole history: count the bands of delays to find, per
        group, the band holding its middle entries and their ranks within it,
        then read them from the band (exact bands) or by walking the
        (scope, group, delay) index from the band's first delay. Exact, like
        ``percentile_cont(0.5)``.

        :param bands: query on ``mango.call.stat.callback.bucket`` within the
            record rules
        :param query: the same rules on the delays (``mango.call.stat.callback``)
        """
        group_column = SQL.identifier(bands.table, group_field)
        # Only the one or two bands holding ranks (n - 1) // 2 and n // 2 of
        # each group come back, with how many delays come before them.
        self.env.cr.execute(
            SQL(
                """
                WITH counted AS (
                    SELECT GROUPING(%(grp)s) AS is_total, %(grp)s AS key,
                           %(bucket)s AS bucket, sum(%(count)s)::integer AS n
                      FROM %(from)s
                     WHERE %(where)s
                  GROUP BY GROUPING SETS ((%(grp)s, %(bucket)s), (%(bucket)s))
                ), ranked AS (
                    -- Integers: sums of integers as numeric cost twice the time.
                    SELECT is_total, key, bucket, n,
                           (sum(n) OVER (PARTITION BY is_total, key ORDER BY bucket)
                               - n)::integer AS before,
                           (sum(n) OVER (PARTITION BY is_total, key))::integer AS size
                      FROM counted
                )
                SELECT is_total, key, bucket, n, before, size
                  FROM ranked
                 WHERE n > 0 AND before <= size / 2 AND before + n > (size - 1) / 2
              ORDER BY is_total, key, bucket
                """,
                grp=group_column,
                bucket=SQL.identifier(bands.table, "bucket"),
                count=SQL.identifier(bands.table, "delay_count"),
                where=_where(bands),
                **{"from": bands.from_clause},
            )
        )
        values, expected = defaultdict(list), {}
        walks, wanted = [], []
        group_of = SQL.identifier(query.table, group_field)
        delay = SQL.identifier(query.table, "delay")
        for is_total, key, bucket, count, before, size in self.env.cr.fetchall():
            key = TOTAL if is_total else key
            expected[key] = 2 - size % 2
            ranks = [
                rank
                for rank in sorted({(size - 1) // 2, size // 2})
                if before <= rank < before + count
            ]
            if delay_bucket_width(bucket) == 1:
                values[key] += [bucket] * len(ranks)
                continue
            if key == TOTAL:
                condition = SQL("TRUE")
            elif key is None:
                condition = SQL("%s IS NULL", group_of)
            else:
                condition = SQL("%s = %s", group_of, key)
            wanted.append(key)
            walks.append(
                SQL(
                    "ARRAY(SELECT %s FROM %s WHERE %s AND %s AND %s >= %s "
                    "ORDER BY %s OFFSET %s LIMIT %s)",
                    delay,
                    query.from_clause,
                    _where(query),
                    condition,
                    delay,
                    bucket,
                    delay,
                    ranks[0] - before,
                    len(ranks),
                )
            )
        if walks:
            self.env.cr.execute(SQL("SELECT %s", SQL(", ").join(walks)))
            for key, found in zip(wanted, self.env.cr.fetchone(), strict=True):
                values[key] += found
        medians = {}
        for key, middle in values.items():
            # Fewer values only if the bands and the delays disagree, which a
            # rebuild mends: no figure rather than a wrong one.
            if len(middle) == expected[key]:
                medians[key] = round(sum(middle) / len(middle), 1)
        return medians

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
        """Mark the finished calls for a statistics refresh: the markers commit
        with the calls, the refresh runs right after the commit in a
        transaction of its own (see ``mango_call_stat_dirty.py``) and costs
        each marked call the same whatever the size of the log
        (``mango.call.stat._mango_refresh_calls``)."""
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
            self._mango_mark_for_refresh(finished | called_back)

    def unlink(self):
        """A call removed from the log takes what it counted out of the
        statistics, and the missed calls it called back lose their call-back
        (the foreign key empties it): all of them are marked for a refresh."""
        calls = self.sudo()
        calls |= calls.search([("callback_call_id", "in", self.ids)])
        marked = {(call.id, call.account_id.id) for call in calls}
        result = super().unlink()
        self._mango_mark_for_refresh(marked)
        return result

    def _mango_mark_for_refresh(self, calls):
        """Mark ``calls`` (records, or (id, account id) pairs) when the
        transaction commits, and refresh them right after it.

        Marked once and refreshed together: a worker batch (or a replay) of
        many calls refreshes each call once."""
        if isinstance(calls, models.BaseModel):
            calls = {(call.id, call.account_id.id) for call in calls}
        cr = self.env.cr
        if STAT_KEYS not in cr.precommit.data:
            pending = cr.precommit.data[STAT_KEYS] = set()
            Dirty = self.env["mango.call.stat.dirty"].sudo()
            Stat = self.env["mango.call.stat"].sudo()
            cr.precommit.add(lambda: Dirty._mango_mark_calls(pending))
            cr.postcommit.add(
                lambda: Stat._mango_refresh_marked_now(
                    {call_id for call_id, _account in pending}
                )
            )
        cr.precommit.data[STAT_KEYS].update(calls)
