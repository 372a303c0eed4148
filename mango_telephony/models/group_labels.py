"""Group labels of the statistics' pivots, formatted once per value.

Odoo formats every group of a ``read_group`` on its own: for a grouping by
week it formats the label with babel, looks up the week's number in the
language, computes the week's bounds in the user's time zone and builds the
group's domain; for an employee it reads the display name through a sudo
environment. That is a few hundred microseconds per group, and the pivots of
the call log and of "Call analysis" over two years have thousands of groups
(the call log's default one, employee × week × status, about ten thousand)
but only about a hundred distinct weeks and a few dozen employees: the
labels cost most of the second such a pivot took, the figures a fraction.

Here Odoo's own formatting runs once per distinct value of each grouping and
every group with that value gets its result, combined into the group's domain
the way Odoo combines it (``compat.domains``): the answer is Odoo's, only its
cost is per value. A date grouping's formatting (label, bounds, condition)
depends on nothing but the grouping, the language, the time zone and the
value: it is kept across requests, so the hundred weeks every pivot shows are
formatted once per worker, not once per request (an employee's name is not
kept: it may change). The call log (``mango_call_report.py``) and "Call
analysis" (``mango_call_stat.py``) inherit ``mango.pivot.groups`` (below),
whose overrides of the formatting hooks call these; nothing outside those two
models is changed. The same parent pauses Python's cyclic garbage collector
while a grouped read runs (``collector_paused``): ten thousand groups are some
hundred thousand dicts, lists and records alive until the answer is sent, and
with Python's default thresholds (700, 10, 10; 18.0 keeps them) the collector
walked the whole heap three or four times in one such read, a third of its
time at ten million calls (``benchmarks/bench_stats.py``). 19.0 raises the thresholds when
it starts and pauses the collector around its own bulk work (``odoo.tools.gc.
disabling_gc``); the pause here does the same for these reads, on both series.
Nothing a grouped read makes needs the collector: the groups are freed by
reference counting once the answer is sent.
"""

import contextlib
import gc

from odoo import api, models
from odoo.models import READ_GROUP_TIME_GRANULARITY
from odoo.tools import get_lang

from ..compat import ODOO_19, domains

# The formatting of a date group by week, month… is a pure function of the
# model, the grouping, the language, the time zone and the value: kept across
# requests (the same hundred weeks on every pivot), up to this many values.
# A record's display name is not kept: it may change.
DATE_FORMATS_LIMIT = 20000
_date_formats = {}


def _date_formats_key(model, spec, kind):
    """What a date grouping's formatting depends on besides the value, or
    None when ``spec`` is not a date grouping by period."""
    name, _sep, granularity = spec.partition(":")
    field = model._fields.get(name)
    if (
        field is None
        or field.type not in ("date", "datetime")
        or granularity not in READ_GROUP_TIME_GRANULARITY
    ):
        return None
    return (
        kind,
        model._name,
        spec,
        field.type,
        get_lang(model.env).code,
        model.env.context.get("tz"),
    )


def _known_date_formats(shared, values):
    """The kept formatting of ``values`` (keys) of the grouping ``shared``."""
    if shared is None:
        return {}
    known = {}
    for key in values:
        answer = _date_formats.get((shared, key))
        if answer is not None:
            known[key] = answer
    return known


def _keep_date_formats(shared, answers):
    if shared is None:
        return
    if len(_date_formats) + len(answers) > DATE_FORMATS_LIMIT:
        _date_formats.clear()
    for key, answer in answers.items():
        _date_formats[(shared, key)] = answer


def value_key(value):
    """The key of a grouped value: values Odoo formats differently stay
    apart even when Python finds them equal (False and 0, 1 and 1.0); a
    record by its model and ids (hashing a record costs more)."""
    if isinstance(value, models.BaseModel):
        return type(value), value._ids
    return type(value), value


def format_rows_once_per_value(format_rows, model, rows, groupby):
    """``_read_group_format_result(rows, groupby)`` (``read_group``: 18.0's
    pivot and graph) with ``format_rows``, Odoo's own, called on one row per
    distinct value of each grouping rather than on every row (for a date
    grouping, per value not formatted by an earlier request).

    :param format_rows: the model's ``super()._read_group_format_result``
    :param model: the model (``self``)
    """
    if not rows or any(
        model._fields[spec.split(":")[0].split(".")[0]].type == "properties"
        for spec in groupby
    ):
        format_rows(rows, groupby)  # properties: their own formatting
        return
    # (spec, the formatting of each value) and each row's keys, column by
    # column: made once (the garbage collector is paused meanwhile, see
    # MangoPivotGroups, so that objects living through the formatting cost
    # it nothing).
    columns, keys = [], []
    try:
        for spec in groupby:
            probes, column_keys, by_id = {}, [], {}
            for row in rows:
                value = row[spec]
                # The rows share their values' objects (an employee's record,
                # a week's date): each object's key is made once. Every value
                # lives in its row meanwhile, so no id is reused.
                key = by_id.get(id(value))
                if key is None:
                    key = by_id[id(value)] = value_key(value)
                column_keys.append(key)
                if key not in probes:
                    probes[key] = {spec: value, "__domain": domains.GROUP_DOMAIN_START}
            columns.append((spec, probes))
            keys.append(column_keys)
    except TypeError:  # a value that cannot be a key: Odoo's way, row by row
        format_rows(rows, groupby)
        return
    for spec, probes in columns:
        shared = _date_formats_key(model, spec, "read_group")
        known = _known_date_formats(shared, probes)
        new = {key: probe for key, probe in probes.items() if key not in known}
        if new:
            format_rows(list(new.values()), [spec])
        for key, probe in new.items():
            ranged = spec in probe.get("__range", ())
            new[key] = (
                probe[spec],
                ranged,
                probe["__range"][spec] if ranged else None,
                domains.group_domain_part(probe["__domain"]),
            )
        _keep_date_formats(shared, new)
        probes.update(known)
        probes.update(new)
    # A group's domain is its search domain and each grouping's condition in
    # turn; all but the last are shared by many groups (an employee's, then
    # an employee's week's), joined once each; the last gives the group's
    # own domain.
    join, join_last, done = domains.group_domain_joiner()
    joined = {}
    last = len(columns) - 1
    answers_by_column = [answers for _spec, answers in columns]
    for position, row in enumerate(rows):
        domain = row["__domain"]
        node = joined.get(id(domain))
        if node is None:
            node = joined[id(domain)] = {}
        for index, spec in enumerate(groupby):
            key = keys[index][position]
            label, ranged, bounds, part = answers_by_column[index][key]
            row[spec] = label
            if ranged:
                # A dict of its own per group, as Odoo gives.
                row.setdefault("__range", {})[spec] = dict(bounds) if bounds else bounds
            if index == last:
                row["__domain"] = join_last(domain, part)
                break
            entry = node.get(key)
            if entry is None:
                entry = node[key] = (join(domain, part), {})
            domain, node = entry
        else:  # no grouping
            row["__domain"] = done(domain)


def web_format_once_per_value(format_groups, model, groupby, aggregates, groups):
    """19.0's ``_web_read_group_format(groupby, aggregates, groups)`` (the web
    client's ``formatted_read_group`` and ``formatted_read_grouping_sets``)
    with ``format_groups``, Odoo's own, called on one group per distinct value
    of each grouping: the label and the condition of each value, parsed once,
    then each group's conditions joined the way Odoo joins them
    (``compat.domains.group_extra_domain_joiner``).

    :param format_groups: the model's ``super()._web_read_group_format``
    :param model: the model (``self``)
    """
    width = len(groupby)
    # Each group's keys, made once; the distinct values of each grouping.
    try:
        # The groups share their values' objects (an employee's record, a
        # week's date): each object's key is made once. Every value lives in
        # its group meanwhile, so no id is reused.
        by_id = {}

        def key_of(value):
            key = by_id.get(id(value))
            if key is None:
                key = by_id[id(value)] = value_key(value)
            return key

        keys = [tuple(key_of(value) for value in group[:width]) for group in groups]
        distinct = [{} for _spec in groupby]
        for group, group_keys in zip(groups, keys, strict=True):
            for index, key in enumerate(group_keys):
                if key not in distinct[index]:
                    distinct[index][key] = group[index]
    except TypeError:  # a value that cannot be a key: Odoo's way
        return format_groups(groupby, aggregates, groups)
    formatted = []
    for spec, values in zip(groupby, distinct, strict=True):
        shared = _date_formats_key(model, spec, "web")
        known = _known_date_formats(shared, values)
        new = [key for key in values if key not in known]
        answers = format_groups((spec,), (), [(values[key],) for key in new])
        new = {
            key: (answer[spec], domains.group_domain_part(answer["__extra_domain"]))
            for key, answer in zip(new, answers, strict=True)
        }
        _keep_date_formats(shared, new)
        formatted.append(known | new)
    # A group's domain is the conjunction of its conditions, which Odoo
    # flattens: the conditions of all but its last grouping (an employee's
    # week) are shared by many groups, joined once each.
    join, _join_last, _done = domains.group_domain_joiner()
    extra = domains.group_extra_domain_joiner()
    # The shared conditions of the groups' leading values, as a tree: a
    # group's prefix (its employee, then its employee's week) is one lookup
    # per grouping, not a tuple made and hashed per group.
    tree = {}
    result = []
    measures = list(enumerate(aggregates, width))
    last = width - 1
    for group, group_keys in zip(groups, keys, strict=True):
        row, parts, node = {}, [], tree
        for index, key in enumerate(group_keys):
            label, part = formatted[index][key]
            row[groupby[index]] = label
            if index == 0 or index == last:
                parts.append(part)
            else:
                entry = node.get(key)
                if entry is None:
                    entry = node[key] = (join(parts[0], part), {})
                parts[0], node = entry
                continue
            if index == 0 and last > 1:
                entry = node.get(key)
                if entry is None:
                    entry = node[key] = (None, {})
                node = entry[1]
        row["__extra_domain"] = extra(parts)
        for position, spec in measures:
            row[spec] = group[position]
        result.append(row)
    return result


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the block, and back on after
    it whatever happens (19.0's ``disabling_gc`` leaves it off when the block
    raises). Another thread that paused it first turns it back on itself."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class MangoPivotGroups(models.AbstractModel):
    """The grouped reads of a model whose pivots have thousands of groups:
    the call log (``mango_call_report.py``) and "Call analysis"
    (``mango_call_stat.py``). Each value of a grouping formatted once, and the
    garbage collector paused while the groups are built (module docstring)."""

    _name = "mango.pivot.groups"
    _description = "Grouped reads of thousands of groups"

    if not ODOO_19:
        # 19.0's web client reads groups with the two methods below; its
        # read_group is deprecated (and its warning would name this file).

        @api.model
        def read_group(self, *args, **kwargs):
            with collector_paused():
                return super().read_group(*args, **kwargs)

    else:

        @api.model
        def formatted_read_group(self, *args, **kwargs):
            with collector_paused():
                return super().formatted_read_group(*args, **kwargs)

        @api.model
        def formatted_read_grouping_sets(self, *args, **kwargs):
            with collector_paused():
                return super().formatted_read_grouping_sets(*args, **kwargs)

    @api.model
    def _read_group_format_result(self, rows_dict, lazy_groupby):
        # A pivot by employee × week has thousands of groups and a hundred
        # weeks: each week's label, bounds and domain, each employee's name,
        # formatted once; Odoo's answer unchanged.
        return format_rows_once_per_value(
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
