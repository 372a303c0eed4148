import {Component, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {deserializeDateTime, formatDateTime} from "@web/core/l10n/dates";
import {formatMangoDurationWords} from "../fields/duration_field.esm";
import {registry} from "@web/core/registry";
import {useService} from "@web/core/utils/hooks";

const STATE_LABELS = {
    ringing: _t("Ringing"),
    connected: _t("Connected"),
    ended: _t("Ended"),
};

export class MangoCallCard extends Component {
    static template = "mango_telephony.CallCard";
    static props = {card: Object};

    setup() {
        this.cards = useService("mango_call_card");
        this.action = useService("action");
        this.orm = useService("orm");
        this.ui = useState({permission: this.cards.desktopPermission});
    }

    get card() {
        return this.props.card;
    }

    get stateLabel() {
        return STATE_LABELS[this.card.state] || this.card.state;
    }

    get title() {
        // Only a hand-over by a colleague: calls a queue or the IVR distributes
        // also come "taken from" another leg, and they are plain incoming calls.
        if (this.card.transferred) {
            return _t("Transferred call");
        }
        if (this.card.colleague) {
            return _t("Call from a colleague");
        }
        return this.card.direction === "outgoing" ? _t("Call") : _t("Incoming call");
    }

    formatDate(value) {
        return value
            ? formatDateTime(deserializeDateTime(value), {showSeconds: false})
            : "";
    }

    formatDuration(seconds) {
        return formatMangoDurationWords(seconds || 0);
    }

    onPointerEnter() {
        // Never close a card under the user's pointer.
        this.cards.hold(this.card.key);
    }

    onPointerLeave() {
        this.cards.release(this.card.key);
    }

    openRecord(model, id) {
        this.action.doAction({
            type: "ir.actions.act_window",
            res_model: model,
            res_id: id,
            views: [[false, "form"]],
            target: "current",
        });
    }

    openPartner() {
        this.cards.openPartner(this.card);
    }

    async createFromCall(method, fallbackModel, context) {
        if (this.card.can_open_call) {
            const action = await this.orm.call("mango.call", method, [
                [this.card.call_id],
            ]);
            return this.action.doAction(action);
        }
        return this.action.doAction({
            type: "ir.actions.act_window",
            res_model: fallbackModel,
            views: [[false, "form"]],
            target: "current",
            context,
        });
    }

    createPartner() {
        return this.createFromCall("action_mango_create_partner", "res.partner", {
            default_phone: this.card.number,
        });
    }

    createLead() {
        const context = {default_phone: this.card.number};
        if (this.card.partner) {
            context.default_partner_id = this.card.partner.id;
        }
        return this.createFromCall("action_mango_create_lead", "crm.lead", context);
    }

    close() {
        this.cards.remove(this.card.key);
    }

    async enableDesktop() {
        this.ui.permission = await this.cards.requestDesktopPermission();
    }
}

export class MangoCallCardContainer extends Component {
    static template = "mango_telephony.CallCardContainer";
    static components = {MangoCallCard};
    static props = {};

    setup() {
        this.cards = useState(useService("mango_call_card").state);
    }
}

registry.category("main_components").add("mango_telephony.CallCardContainer", {
    Component: MangoCallCardContainer,
});
