"""The call log's pivot and graph answered from the call statistics.

Grouping ten million calls by employee and week takes Odoo seconds. The
statistics (``mango.call.stat`` and its weekly and monthly totals) hold the same
figures for the calls they count — every finished call with a start time — so a
grouping of the call log by employee, line, account, company, week, month,
quarter or year, counting calls or summing talk time, is read from them, and
only the calls the statistics do not count yet (ringing, in progress, without a
start time: a few, found by index) are read from the log and added.

Answered from the statistics only when the figures are exactly the log's:

* every condition of the search and of the user's record rules is on a key the
  statistics keep, or a bound on the start time at a midnight of the
  statistics' time zone (the day rows count local days);
* a grouping by date is in the statistics' time zone (the user's time zone is
  the company's), with one time zone for every account;
* the measures are the count and the talk time (a call that was not answered
  has no talk time, see ``mango_office.calls``);
* no call (or day) is waiting for its refresh (``mango.call.stat.dirty``).

Anything else is Odoo's own read_group on the log.
"""

from datetime import datetime, time

import pytz

from odoo import api, fields, models
from odoo.tools import SQL

from mango_office.rules import FINISHED_STATUSES

from ..compat import domains
from .mango_call import STATUSES
from .mango_call_stat import _orders_within, _stat_tz

# call log key -> statistics key
KEYS = {
    "employee_user_id": "user_id",
    "line_number": "line_number",
    "account_id": "account_id",
    "company_id": "company_id",
}
DATE_GRANULARITIES = ("week", "month", "quarter", "year")
AGGREGATES = {"__count": "call_count:sum", "talk_duration:sum": "talk_total:sum"}
UNFINISHED_STATUSES = tuple(
    key for key, _label in STATUSES if key not in FINISHED_STATUSES
)
TRUE = object()
# The finished statuses and their counters on the statistics.
STATUS_SPLIT = ("answered", "failed", "missed")


def _translate(domain, tz):
    """``domain`` on the call log as a domain on the day rows: a list, TRUE
    (everything) or None (not expressible exactly)."""
    items = iter(domains.normalized(domain))

    def leaf(item):
        name, operator, value = item
        if not isinstance(name, str):
            return TRUE if tuple(item) == (1, "=", 1) else None
        if name in KEYS:
            return [(KEYS[name], operator, value)]
        if name != "start_time" or operator not in (">=", "<") or not value:
            return None
        try:
            moment = fields.Datetime.to_datetime(value)
        except (TypeError, ValueError):
            return None
        local = pytz.UTC.localize(moment).astimezone(tz)
        if local.time() != time.min:
            return None
        return [("date", operator, local.date())]

    def node():
        item = next(items)
        if item in ("&", "|"):
            left, right = node(), node()
            if item == "|" and TRUE in (left, right):
                return TRUE
            if left is None or right is None:
                return None
            if item == "&" and left is TRUE:
                return right
            if item == "&" and right is TRUE:
                return left
            return [item, *left, *right]
        if item == "!":
            node()
            return None
        return leaf(item)

    try:
        result = node()
    except StopIteration:  # the empty domain
        return TRUE
    return None if next(items, None) is not None else result


def _add_pending(result, pending, width, by_status):
    """Add the rows of the calls the statistics do not count to ``result``
    (``[[keys, values]]``, in the log's order); False when one is in a group
    only they have, whose place the statistics cannot tell."""
    positions = {keys: index for index, (keys, _values) in enumerate(result)}
    for row in pending:
        keys = tuple(row[:width])
        if not any(row[width:]):
            continue  # the empty total of no pending call
        if keys in positions:
            values = result[positions[keys]][1]
            for index, value in enumerate(row[width:]):
                if value:
                    values[index] = (values[index] or 0) + value
            continue
        # A ringing call's status among the finished ones of its group.
        same = [
            index
            for index, (other, _values) in enumerate(result)
            if other[:-1] == keys[:-1]
        ]
        if not by_status or not same:
            return False
        place = next(
            (index for index in same if result[index][0][-1] > keys[-1]),
            same[-1] + 1,
        )
        result.insert(place, [keys, list(row[width:])])
        positions = {keys: index for index, (keys, _values) in enumerate(result)}
    return True


class MangoCall(models.Model):
    _name = "mango.call"
    # Its pivots' groups: each value formatted once (group_labels.py).
    _inherit = ["mango.call", "mango.pivot.groups"]

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
        routed = None
        if not (having or offset or limit):
            routed = self._mango_read_group_from_stats(
                domain, groupby, aggregates, order
            )
        if routed is not None:
            return routed
        return super()._read_group(
            domain, groupby, aggregates, having, offset, limit, order
        )

    @api.model
    def _read_grouping_sets(self, domain, grouping_sets, aggregates=(), order=None):
        # Odoo 19.0's pivot reads its groupings in one call: each one the
        # statistics answer is read from them, the others from the log at once.
        order_within = _orders_within(order, grouping_sets)
        answers = self._mango_read_grouping_sets_from_stats(
            domain, grouping_sets, aggregates, order
        )
        from_log = [
            grouping
            for grouping, answer in zip(grouping_sets, answers, strict=True)
            if answer is None
        ]
        if from_log:
            log_order = order_within(
                {spec for grouping in from_log for spec in grouping}
            )
            results = iter(
                super()._read_grouping_sets(
                    domain, from_log, aggregates, log_order or None
                )
            )
            answers = [
                answer if answer is not None else next(results) for answer in answers
            ]
        return answers

    @api.model
    def _mango_stat_tz(self):
        """The one time zone the statistics of every account count days in,
        or None when accounts count in different ones."""
        accounts = self.env["mango.account"].sudo().with_context(active_test=False)
        names = {_stat_tz(company) for company in accounts.search([]).company_id}
        return names.pop() if len(names) == 1 else None

    def _mango_read_grouping_sets_from_stats(
        self, domain, grouping_sets, aggregates, order
    ):
        """For each of ``grouping_sets``, the rows ``_read_grouping_sets``
        would give it, read from the statistics, or None (as
        ``_mango_read_group_from_stats``). With an order (the web client always
        gives one), the groupings the statistics answer are read from them in
        one call, and the calls they do not count in one query."""
        order_within = _orders_within(order, grouping_sets)
        if not order:
            # Odoo sorts grouping sets without an order by all their fields
            # at once, by id: each grouping is read alone, as before.
            return [
                self._mango_read_group_from_stats(
                    domain, grouping, aggregates, order_within(grouping)
                )
                for grouping in grouping_sets
            ]
        memo = {}
        plans = [
            self._mango_stat_plan(
                domain, tuple(grouping), tuple(aggregates), order_within(grouping), memo
            )
            for grouping in grouping_sets
        ]
        planned = [index for index, plan in enumerate(plans) if plan is not None]
        answers = [None] * len(grouping_sets)
        if not planned:
            return answers
        stat_domains = {repr(plans[index][0]) for index in planned}
        if len(stat_domains) > 1:  # not seen: the same domain and rules
            return [
                self._mango_read_group_from_stats(
                    domain, grouping, aggregates, order_within(grouping)
                )
                for grouping in grouping_sets
            ]
        self.check_access("read")
        stat_domain = plans[planned[0]][0]
        stat_aggregates = [AGGREGATES[spec] for spec in aggregates]
        if any(plans[index][3] for index in planned):
            stat_aggregates += [f"{status}_count:sum" for status in STATUS_SPLIT]
        stat_sets = list(dict.fromkeys(tuple(plans[index][1]) for index in planned))
        # One order for all of them, by every grouping's fields as the web
        # client asks; each grouping is sorted by the terms on its own fields.
        stat_order = ", ".join(
            dict.fromkeys(
                term.strip()
                for index in planned
                for term in plans[index][2].split(",")
                if term.strip()
            )
        )
        results = (
            self.env["mango.call.stat"]
            .sudo()
            ._read_grouping_sets(
                stat_domain, stat_sets, stat_aggregates, order=stat_order or None
            )
        )
        rows_of = dict(zip(stat_sets, results, strict=True))
        pending_of = self._mango_pending_rows(
            domain, [tuple(grouping_sets[index]) for index in planned], aggregates
        )
        for index in planned:
            grouping = tuple(grouping_sets[index])
            _stat_domain, stat_groupby, _order, by_status = plans[index]
            answers[index] = self._mango_with_pending(
                self._mango_rows_from_stats(
                    rows_of[tuple(stat_groupby)], grouping, aggregates, by_status
                ),
                pending_of[grouping],
                grouping,
                by_status,
            )
        return answers

    def _mango_pending_rows(self, domain, grouping_sets, aggregates):
        """Per grouping, the rows of the calls the statistics do not count
        (ringing, in progress, without a start time), read in one query."""
        grouping_sets = list(dict.fromkeys(grouping_sets))
        results = super()._read_grouping_sets(
            self._mango_pending_domain(domain), grouping_sets, aggregates
        )
        return dict(zip(grouping_sets, results, strict=True))

    def _mango_pending_domain(self, domain):
        return domains.AND(
            [
                domain,
                [
                    "|",
                    ("status", "in", UNFINISHED_STATUSES),
                    ("start_time", "=", False),
                ],
            ]
        )

    def _mango_with_pending(self, result, pending, groupby, by_status):
        """``result`` (rows from the statistics) with the rows of the calls
        they do not count added, or None when one of those is in a group only
        they have, whose place the statistics cannot tell."""
        width = len(groupby)
        pending = [row for row in pending if any(row[width:])]
        if not pending:  # the usual case: every call counted
            return result
        merged = [[row[:width], list(row[width:])] for row in result]
        if not _add_pending(merged, pending, width, by_status):
            return None
        return [(*keys, *values) for keys, values in merged]

    def _mango_read_group_from_stats(self, domain, groupby, aggregates, order):
        """The rows ``_read_group`` would return, read from the statistics, or
        None when they would not be exactly the log's (see the module's
        docstring)."""
        groupby, aggregates = tuple(groupby), tuple(aggregates)
        plan = self._mango_stat_plan(domain, groupby, aggregates, order)
        if plan is None:
            return None
        stat_domain, stat_groupby, stat_order, by_status = plan
        self.check_access("read")
        stat_aggregates = [AGGREGATES[spec] for spec in aggregates]
        if by_status:
            stat_aggregates += [f"{status}_count:sum" for status in STATUS_SPLIT]
        rows = (
            self.env["mango.call.stat"]
            .sudo()
            ._read_group(
                stat_domain, stat_groupby, stat_aggregates, order=stat_order or None
            )
        )
        result = self._mango_rows_from_stats(rows, groupby, aggregates, by_status)
        # The calls the statistics do not count (yet), by index.
        pending = super()._read_group(
            self._mango_pending_domain(domain), groupby, aggregates
        )
        return self._mango_with_pending(result, pending, groupby, by_status)

    def _mango_stat_plan(self, domain, groupby, aggregates, order, memo=None):
        """``(domain, groupby, order, by_status)`` of the statistics that
        answer this grouping exactly, or None."""
        # A status last (the default pivot: employee × week × status): each
        # row of the statistics splits into its answered, failed and missed
        # calls, in the order the log sorts statuses by (their keys).
        by_status = bool(groupby) and groupby[-1] == "status"
        keys_groupby = list(groupby[:-1] if by_status else groupby)
        if any(spec not in AGGREGATES for spec in aggregates):
            return None
        if by_status and order:
            # Only the groupings' own order (read_group's default): by the
            # keys, then the status.
            terms = [term.split() for term in order.split(",") if term.strip()]
            if [words[0] for words in terms] != list(groupby[: len(terms)]) or any(
                len(words) > 1 and words[1].lower() != "asc" for words in terms
            ):
                return None
            order = ", ".join(
                " ".join(words) for words in terms if words[0] != "status"
            )
        stat_groupby, dated = [], False
        for spec in keys_groupby:
            name, _sep, part = spec.partition(":")
            if name in KEYS and not part:
                stat_groupby.append(KEYS[name])
            elif name == "start_time" and part in DATE_GRANULARITIES:
                stat_groupby.append(f"date:{part}")
                dated = True
            else:
                return None
        stat_order = self._mango_stat_order(order, keys_groupby, stat_groupby)
        # What every grouping of one request shares, found once for them all.
        memo = {} if memo is None else memo
        if "tz" not in memo:
            memo["tz"] = self._mango_stat_tz()
        tz_name = memo["tz"]
        if (
            stat_order is None
            or tz_name is None
            or (dated and self.env.context.get("tz", "UTC") != tz_name)
        ):
            return None
        tz = pytz.timezone(tz_name)
        stat_domain = _translate(domain, tz)
        rules = _translate(self.env["ir.rule"]._compute_domain(self._name, "read"), tz)
        if stat_domain is None or rules is None:
            return None
        # Calls marked and not refreshed yet (a fold that just committed, a
        # refresh left to the cron): the statistics lag the log.
        if "lagging" not in memo:
            self.env.cr.execute(
                SQL("SELECT EXISTS (SELECT 1 FROM mango_call_stat_dirty)")
            )
            memo["lagging"] = self.env.cr.fetchone()[0]
        if memo["lagging"]:
            return None
        stat_domain = domains.AND(
            [[] if part is TRUE else part for part in (stat_domain, rules)]
        )
        return stat_domain, stat_groupby, stat_order, by_status

    def _mango_rows_from_stats(self, rows, groupby, aggregates, by_status):
        """The log's rows (``_read_group``'s tuples) from the rows of the
        statistics."""
        width = len(groupby) - by_status
        result = []
        # Each employee, week… converted once: thousands of rows, few values.
        # The rows are built as tuples at once: ten thousand rows of lists
        # made the garbage collector's full passes a good part of the time.
        converted = {}

        def convert(spec, value):
            if spec.startswith("start_time:"):
                return datetime.combine(value, time.min)
            if isinstance(value, models.BaseModel):
                return value.with_env(self.env)
            return value

        counted = [spec == "__count" for spec in aggregates]
        # Each status (sorted) and where its count is in a row.
        status_positions = sorted(
            (status, width + len(aggregates) + index)
            for index, status in enumerate(STATUS_SPLIT)
        )
        for row in rows:
            keys = []
            for spec, value in zip(groupby[:width], row[:width], strict=True):
                # A record by its ids: hashing one makes a frozenset each time.
                key = (
                    (spec, value._name, value._ids)
                    if isinstance(value, models.BaseModel)
                    else (spec, type(value), value)
                )
                known = converted.get(key)
                if known is None:
                    known = converted[key] = convert(spec, value)
                keys.append(known)
            sums = row[width : width + len(aggregates)]
            if not by_status:
                result.append(
                    (
                        *keys,
                        *(
                            (value or 0) if count else value
                            for count, value in zip(counted, sums, strict=True)
                        ),
                    )
                )
                continue
            for status, position in status_positions:
                status_count = row[position]
                if not status_count:
                    continue
                # The talk time: only answered calls have one.
                result.append(
                    (
                        *keys,
                        status,
                        *(
                            status_count
                            if count
                            else (value if status == "answered" else 0.0)
                            for count, value in zip(counted, sums, strict=True)
                        ),
                    )
                )
        return result

    def _mango_stat_order(self, order, groupby, stat_groupby):
        """``order`` in terms of the statistics ("" for none), or None."""
        names = dict(zip(groupby, stat_groupby, strict=True))
        terms = []
        for term in (order or "").split(","):
            words = term.split()
            if not words:
                continue
            if words[0] in names:
                words[0] = names[words[0]]
            elif words[0] in AGGREGATES:
                words[0] = AGGREGATES[words[0]]
            else:
                return None
            terms.append(" ".join(words))
        return ", ".join(terms)
