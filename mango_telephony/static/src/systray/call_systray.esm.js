import {Component, onWillStart, useState} from "@odoo/owl";
import {deserializeDateTime, formatDateTime} from "@web/core/l10n/dates";
import {Dropdown} from "@web/core/dropdown/dropdown";
import {formatMangoDuration} from "../fields/duration_field.esm";
import {registry} from "@web/core/registry";
import {session} from "@web/session";
import {useService} from "@web/core/utils/hooks";

/**
 * Phone icon in the systray: live calls of the company for supervisors (kept
 * current by "mango_call_live" bus messages), the user's recent calls for all.
 */
export class MangoCallSystray extends Component {
    static template = "mango_telephony.CallSystray";
    static components = {Dropdown};
    static props = {};

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        this.busService = useService("bus_service");
        this.info = session.mango_telephony || {};
        this.state = useState({live: [], recent: [], loaded: false});
        this.reloadTimer = null;
        onWillStart(() => (this.info.is_supervisor ? this.load() : null));
        if (this.info.is_supervisor) {
            this.busService.subscribe("mango_call_live", () => this.scheduleReload());
            this.busService.start();
        }
    }

    scheduleReload() {
        // A busy switchboard sends several updates per second: one reload suffices.
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => this.load(), 500);
    }

    async load() {
        const data = await this.orm.silent.call("mango.call", "mango_systray_data", []);
        Object.assign(this.state, data, {loaded: true});
    }

    formatDate(value) {
        return value ? formatDateTime(deserializeDateTime(value)) : "";
    }

    formatDuration(seconds) {
        return formatMangoDuration(seconds);
    }

    openCall(call) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "mango.call",
            res_id: call.id,
            views: [[false, "form"]],
            target: "current",
        });
    }

    openAllCalls() {
        this.action.doAction("mango_telephony.mango_call_action");
    }
}

if ((session.mango_telephony || {}).is_user) {
    registry
        .category("systray")
        .add(
            "mango_telephony.CallSystray",
            {Component: MangoCallSystray},
            {sequence: 26}
        );
}
