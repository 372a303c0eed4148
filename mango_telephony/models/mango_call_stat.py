"""Call statistics pre-aggregated per account × day × employee × line × direction.

Grouping a million ``mango.call`` rows on every dashboard load is too slow, so
``mango.call.stat`` keeps one row per key with additive counters. A row is always
recomputed from the calls of its (account, day) — never incremented — so running
the refresh twice, or after a re-fold, changes nothing, and a full rebuild gives
the same table.
"""

import logging
from collections import defaultdict
from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

FINISHED_STATUSES = ("answered", "missed", "failed")
STAT_KEYS = "mango.call.stat.keys"
DEFAULT_TZ = "Europe/Moscow"
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
PERIODS = ("day", "week", "month", "all")
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
        [
            ("incoming", "Incoming"),
            ("outgoing", "Outgoing"),
            ("internal", "Internal"),
        ],
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
    wait_total = fields.Float(string="Waiting before answer (s)", readonly=True)
    talk_total = fields.Float(string="Talk time (s)", readonly=True)
    callback_time_total = fields.Float(string="Time to call back (s)", readonly=True)
    answered_rate = fields.Float(string="Answered (%)", readonly=True, aggregator="avg")
    avg_wait = fields.Float(string="Average wait (s)", readonly=True, aggregator="avg")
    avg_talk = fields.Float(string="Average talk (s)", readonly=True, aggregator="avg")
    avg_callback_time = fields.Float(
        string="Average time to call back (s)", readonly=True, aggregator="avg"
    )

    def init(self):
        # Exact medians need the individual call-back times, not a sum: they are
        # kept per row in an array the ORM does not need to know about.
        self.env.cr.execute(
            SQL(
                "ALTER TABLE mango_call_stat ADD COLUMN IF NOT EXISTS callback_times "
                "integer[]"
            )
        )
        self.env.cr.execute(
            SQL(
                "CREATE INDEX IF NOT EXISTS mango_call_stat_company_date_idx "
                "ON mango_call_stat (company_id, date)"
            )
        )

    # ------------------------------------------------------------------
    # Groups with correct ratios (pivot, graph, dashboard)
    # ------------------------------------------------------------------

    @api.model
    def read_group(
        self, domain, fields, groupby, offset=0, limit=None, orderby=False, lazy=True
    ):
        names = {spec.split(":")[0].strip() for spec in fields}
        ratios = [name for name in RATIO_FIELDS if name in names]
        extra = []
        for name in ratios:
            for counter in RATIO_FIELDS[name][:2]:
                if counter not in names and f"{counter}:sum" not in extra:
                    extra.append(f"{counter}:sum")
        groups = super().read_group(
            domain,
            list(fields) + extra,
            groupby,
            offset=offset,
            limit=limit,
            orderby=orderby,
            lazy=lazy,
        )
        for group in groups:
            for name in ratios:
                numerator, denominator, factor = RATIO_FIELDS[name]
                group[name] = _ratio(
                    group.get(numerator) or 0, group.get(denominator) or 0, factor
                )
        return groups

    # ------------------------------------------------------------------
    # Keeping the table current
    # ------------------------------------------------------------------

    def _mango_select_sql(self, where, tz):
        """The aggregate of the finished calls matching ``where`` per key."""
        local_date = SQL("(c.start_time AT TIME ZONE 'UTC' AT TIME ZONE %s)::date", tz)
        return SQL(
            """
            SELECT %(local_date)s, c.account_id, c.company_id, c.employee_user_id,
                   c.line_number, c.direction,
                   count(*),
                   count(*) FILTER (WHERE c.status = 'answered'),
                   count(*) FILTER (WHERE c.status = 'missed'),
                   count(*) FILTER (WHERE c.status = 'failed'),
                   count(*) FILTER (WHERE c.status = 'missed'
                                      AND c.direction = 'incoming'
                                      AND c.callback_call_id IS NULL),
                   count(*) FILTER (WHERE c.status = 'missed'
                                      AND c.callback_call_id IS NOT NULL),
                   COALESCE(sum(c.wait_duration)
                            FILTER (WHERE c.status = 'answered'), 0),
                   COALESCE(sum(c.talk_duration)
                            FILTER (WHERE c.status = 'answered'), 0),
                   COALESCE(sum(c.time_to_callback)
                            FILTER (WHERE c.status = 'missed'
                                      AND c.callback_call_id IS NOT NULL), 0),
                   array_agg(COALESCE(c.time_to_callback, 0))
                       FILTER (WHERE c.status = 'missed'
                                 AND c.callback_call_id IS NOT NULL)
              FROM mango_call c
             WHERE c.status IN %(finished)s AND c.start_time IS NOT NULL
               AND %(where)s
          GROUP BY 1, 2, 3, 4, 5, 6
            """,
            local_date=local_date,
            finished=FINISHED_STATUSES,
            where=where,
        )

    def _mango_insert_sql(self, select):
        return SQL(
            """
            WITH agg (date, account_id, company_id, user_id, line_number, direction,
                      call_count, answered_count, missed_count, failed_count,
                      missed_pending_count, called_back_count, wait_total,
                      talk_total, callback_time_total, callback_times) AS (%s)
            INSERT INTO mango_call_stat (
                date, account_id, company_id, user_id, line_number, direction,
                call_count, answered_count, missed_count, failed_count,
                missed_pending_count, called_back_count, wait_total, talk_total,
                callback_time_total, callback_times,
                answered_rate, avg_wait, avg_talk, avg_callback_time)
            SELECT date, account_id, company_id, user_id, line_number, direction,
                   call_count, answered_count, missed_count, failed_count,
                   missed_pending_count, called_back_count, wait_total, talk_total,
                   callback_time_total, callback_times,
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
            """,
            select,
        )

    @api.model
    def _mango_refresh(self, keys):
        """Recompute the rows of the given (account id, local date) pairs.

        Each (account, day) is locked for the transaction, so two workers
        finishing calls of the same day take turns instead of double-counting.
        """
        by_account = defaultdict(set)
        for account_id, day in keys:
            if account_id and day:
                by_account[account_id].add(day)
        if not by_account:
            return
        self.env["mango.call"].flush_model()
        cr = self.env.cr
        for account_id in sorted(by_account):
            account = self.env["mango.account"].sudo().browse(account_id)
            tz_name = _stat_tz(account.company_id)
            tz = pytz.timezone(tz_name)
            days = sorted(by_account[account_id])
            for day in days:
                cr.execute(
                    SQL(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))",
                        f"mango.call.stat:{account_id}:{day}",
                    )
                )
            cr.execute(
                SQL(
                    "DELETE FROM mango_call_stat WHERE account_id = %s AND date IN %s",
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
            cr.execute(self._mango_insert_sql(self._mango_select_sql(where, tz_name)))
        self.invalidate_model()

    @api.model
    def _mango_refresh_pending(self):
        """Pre-commit: refresh the days of the calls finished in this transaction."""
        keys = self.env.cr.precommit.data.pop(STAT_KEYS, set())
        self._mango_refresh(keys)

    @api.model
    def _mango_rebuild(self):
        """Recompute the whole table from the calls (safety net: cron, button)."""
        self.env["mango.call"].flush_model()
        cr = self.env.cr
        cr.execute(SQL("LOCK TABLE mango_call_stat IN EXCLUSIVE MODE"))
        cr.execute(SQL("DELETE FROM mango_call_stat"))
        accounts = self.env["mango.account"].sudo().with_context(active_test=False)
        for tz_name, group in (
            accounts.search([]).grouped(lambda a: _stat_tz(a.company_id)).items()
        ):
            where = SQL("c.account_id IN %s", tuple(group.ids))
            cr.execute(self._mango_insert_sql(self._mango_select_sql(where, tz_name)))
        self.invalidate_model()
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
    def mango_dashboard_data(self, period="week", group_by="user", interval="day"):
        """Figures of the statistics dashboard, from the reporting table only.

        One aggregate query with grouping sets gives the rows (per employee or
        line), the time series and the totals together, and a second one the
        exact medians; the user's record rules apply to both.

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
        query = self._search(domain)
        query.order = None
        table = self._table
        group_column = SQL.identifier(table, group_field)
        bucket = SQL(
            "date_trunc(%s, %s)::date", interval, SQL.identifier(table, "date")
        )
        direction = SQL.identifier(table, "direction")
        sums = [
            SQL("COALESCE(sum(%s), 0)", SQL.identifier(table, name))
            for name in COUNTERS
        ]
        by_direction = [
            SQL(
                "COALESCE(sum(%s) FILTER (WHERE %s = %s), 0)",
                SQL.identifier(table, "call_count"),
                direction,
                name,
            )
            for name in ("incoming", "outgoing", "internal")
        ]
        self.env.cr.execute(
            SQL(
                """
                SELECT GROUPING(%(grp)s), GROUPING(%(bucket)s), %(grp)s, %(bucket)s,
                       %(sums)s
                  FROM %(from)s
                 WHERE %(where)s
              GROUP BY GROUPING SETS ((%(grp)s), (%(bucket)s), ())
                """,
                grp=group_column,
                bucket=bucket,
                sums=SQL(", ").join(sums + by_direction),
                where=_where(query),
                **{"from": query.from_clause},
            )
        )
        names = (*COUNTERS, "incoming", "outgoing", "internal")
        rows, series, totals = {}, {}, {}
        for not_group, not_bucket, key, day, *values in self.env.cr.fetchall():
            values = dict(zip(names, values, strict=True))
            if not_group and not_bucket:
                totals = values
            elif not_bucket:
                rows[key if key is not None else (0 if group_by == "user" else "")] = (
                    values
                )
            else:
                series[fields.Date.to_string(day)] = values
        if group_by == "user":
            users = self.env["res.users"].sudo().browse([k for k in rows if k])
            labels = {user.id: user.name for user in users}
            labels[0] = self.env._("Nobody")
        else:
            labels = {key: key or self.env._("No line") for key in rows}
        medians = self._mango_median_callback(query, group_field)
        result_rows = [
            {
                "key": key,
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
                "median_callback_time": medians.get("__total__"),
            },
            "rows": result_rows,
            "series": [
                {"date": day, **self._mango_metrics(values)}
                for day, values in sorted(series.items())
            ],
        }

    @api.model
    def _mango_median_callback(self, query, group_field):
        """Exact median time to call back, per group and overall, from the
        call-back times stored per row, within ``query`` (record rules applied)."""
        table = self._table
        group_column = SQL.identifier(table, group_field)
        self.env.cr.execute(
            SQL(
                """
                SELECT GROUPING(%(grp)s), %(grp)s,
                       percentile_cont(0.5) WITHIN GROUP (ORDER BY times.t)
                  FROM %(from)s
                 CROSS JOIN LATERAL unnest(%(times)s) AS times(t)
                 WHERE %(times)s IS NOT NULL AND %(where)s
              GROUP BY GROUPING SETS ((%(grp)s), ())
                """,
                grp=group_column,
                times=SQL.identifier(table, "callback_times"),
                where=_where(query),
                **{"from": query.from_clause},
            )
        )
        empty = 0 if group_field == "user_id" else ""
        medians = {}
        for is_total, grp, median in self.env.cr.fetchall():
            key = "__total__" if is_total else (empty if grp is None else grp)
            medians[key] = round(median, 1) if median is not None else None
        return medians


class MangoCall(models.Model):
    _inherit = "mango.call"

    def _mango_on_call_updated(self, previous):
        result = super()._mango_on_call_updated(previous)
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
            # Refreshed once per transaction: a worker batch (or a replay) of many
            # calls of one day recomputes that day once, not once per call.
            data = self.env.cr.precommit.data
            if STAT_KEYS not in data:
                data[STAT_KEYS] = set()
                self.env.cr.precommit.add(Stat._mango_refresh_pending)
            data[STAT_KEYS].update(keys)
        return result
