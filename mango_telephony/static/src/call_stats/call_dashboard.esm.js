import {Component, onWillStart, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {formatFloat} from "@web/core/utils/numbers";
import {formatMangoDurationWords} from "../fields/duration_field.esm";
import {registry} from "@web/core/registry";
import {session} from "@web/session";
import {useService} from "@web/core/utils/hooks";

const PERIODS = [
    ["day", _t("Today")],
    ["week", _t("This week")],
    ["month", _t("This month")],
    ["all", _t("All time")],
];
const GROUPINGS = [
    ["user", _t("Per employee")],
    ["line", _t("Per line")],
];
// At most this many date labels under the chart; the others are every n-th bar.
const MAX_AXIS_LABELS = 12;

/**
 * A round step for an axis from 0 to ``max`` in about four steps: 1, 2, 5 × 10^n.
 *
 * @param {Number} max
 * @returns {Number}
 */
function niceStep(max) {
    const rough = Math.max(max, 1) / 4;
    const magnitude = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 5, 10].find((factor) => factor * magnitude >= rough);
    return Math.max(1, step * magnitude);
}

/**
 * Call statistics dashboard: incoming, outgoing and missed calls, answered rate,
 * waiting and talk times, missed calls not called back and the median time to
 * call back, per employee or line, for a period — all from mango.call.stat.
 */
export class MangoCallDashboard extends Component {
    static template = "mango_telephony.CallDashboard";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.periods = PERIODS;
        this.groupings = GROUPINGS;
        this.isAdmin = Boolean((session.mango_telephony || {}).is_admin);
        this.state = useState({
            period: "week",
            groupBy: "user",
            data: null,
            loading: true,
        });
        onWillStart(() => this.load());
    }

    async load() {
        this.state.loading = true;
        const interval = this.state.period === "all" ? "month" : "day";
        this.state.data = await this.orm.call(
            "mango.call.stat",
            "mango_dashboard_data",
            [],
            {
                period: this.state.period,
                group_by: this.state.groupBy,
                interval,
            }
        );
        this.state.loading = false;
    }

    setPeriod(period) {
        this.state.period = period;
        return this.load();
    }

    setGroupBy(groupBy) {
        this.state.groupBy = groupBy;
        return this.load();
    }

    /**
     * A duration in words ("29 min 4 s"): "29:04" read as a time of day.
     *
     * @param {Number|null} seconds
     * @param {Number} [count] calls it is an average of: none, no average
     * @returns {String}
     */
    formatSeconds(seconds, count) {
        if (seconds === null || seconds === undefined || count === 0) {
            return "—";
        }
        return formatMangoDurationWords(seconds);
    }

    /**
     * A percentage in the reader's notation: "80,4 %" in Russian and Finnish.
     *
     * @param {Number} rate
     * @returns {String}
     */
    formatRate(rate) {
        return `${formatFloat(rate || 0, {digits: [false, 1]})} %`;
    }

    barWidth(value, max) {
        return max ? Math.max(2, Math.round((value * 100) / max)) : 0;
    }

    /**
     * The "Calls over time" chart: one bar per day (or month over all time) of
     * the whole period, days without calls and days still to come included, a
     * value axis with round steps, and date labels.
     *
     * @returns {Object|null} ``{bars, ticks, top}``; null when there is nothing
     *     to draw (no call, or a single day)
     */
    get chart() {
        const data = this.state.data;
        if (!data || !data.series.length || data.period === "day") {
            return null;
        }
        const monthly = data.interval === "month";
        const unit = monthly ? "month" : "day";
        const byDate = new Map(data.series.map((point) => [point.date, point]));
        const first = luxon.DateTime.fromISO(data.date_from || data.series[0].date);
        let last = luxon.DateTime.fromISO(data.series[data.series.length - 1].date);
        if (data.period === "week") {
            last = first.plus({days: 6});
        } else if (data.period === "month") {
            last = first.endOf("month").startOf("day");
        }
        const today = luxon.DateTime.now().startOf(unit);
        const days = [];
        for (let day = first.startOf(unit); day <= last; day = day.plus({[unit]: 1})) {
            days.push(day);
        }
        const most = Math.max(0, ...data.series.map((point) => point.calls));
        const step = niceStep(most);
        const top = step * Math.max(1, Math.ceil(most / step));
        const every = Math.ceil(days.length / MAX_AXIS_LABELS);
        const labelFormat = monthly
            ? {month: "short", year: "numeric"}
            : data.period === "week"
              ? {weekday: "short", day: "numeric"}
              : {day: "numeric", month: "short"};
        const titleFormat = monthly
            ? {month: "long", year: "numeric"}
            : {weekday: "short", day: "numeric", month: "short", year: "numeric"};
        const bars = days.map((day, index) => {
            const point = byDate.get(day.toISODate()) || {};
            const calls = point.calls || 0;
            const missed = point.missed || 0;
            const answered = point.answered || 0;
            const other = Math.max(0, calls - missed - answered);
            const percent = (value) => (value * 100) / top;
            return {
                key: day.toISODate(),
                calls,
                future: day > today,
                height: percent(calls),
                answeredHeight: percent(answered),
                missedHeight: percent(missed),
                otherHeight: percent(other),
                label: index % every === 0 ? day.toLocaleString(labelFormat) : "",
                title: _t("%(date)s: %(calls)s calls, %(missed)s missed", {
                    date: day.toLocaleString(titleFormat),
                    calls,
                    missed,
                }),
            };
        });
        const ticks = [];
        for (let value = 0; value <= top; value += step) {
            ticks.push({value, bottom: (value * 100) / top});
        }
        return {bars, ticks, top, showValues: bars.length <= 16};
    }

    openAnalysis() {
        this.action.doAction("mango_telephony.mango_call_stat_action");
    }

    openPendingMissed() {
        this.action.doAction("mango_telephony.mango_call_action", {
            additionalContext: {search_default_unanswered_no_followup: 1},
        });
    }

    async rebuild() {
        await this.action.doAction(
            await this.orm.call("mango.call.stat", "action_mango_rebuild", [])
        );
        await this.load();
    }
}

registry.category("actions").add("mango_telephony.call_dashboard", MangoCallDashboard);
