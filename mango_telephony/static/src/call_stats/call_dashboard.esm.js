import {Component, onWillStart, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
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

    formatSeconds(seconds) {
        if (seconds === null || seconds === undefined) {
            return "—";
        }
        const total = Math.round(seconds);
        const hours = Math.floor(total / 3600);
        const minutes = Math.floor((total % 3600) / 60);
        const rest = total % 60;
        if (hours) {
            return `${hours}:${String(minutes).padStart(2, "0")}:${String(rest).padStart(2, "0")}`;
        }
        return `${minutes}:${String(rest).padStart(2, "0")}`;
    }

    formatRate(rate) {
        return `${(rate || 0).toFixed(1)} %`;
    }

    barWidth(value, max) {
        return max ? Math.max(2, Math.round((value * 100) / max)) : 0;
    }

    get maxSeriesCalls() {
        const series = (this.state.data && this.state.data.series) || [];
        return Math.max(0, ...series.map((point) => point.calls));
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
