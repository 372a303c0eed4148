import {Component, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {session} from "@web/session";
import {useService} from "@web/core/utils/hooks";

/**
 * The settings the server put in the session for the telephony web client.
 *
 * @returns {Object|undefined}
 */
export function mangoTelephonyInfo() {
    return session.mango_telephony;
}

/**
 * Whether the current user gets call buttons: telephony users, and whoever calls
 * through a softphone (that needs no PBX account).
 *
 * @returns {Boolean}
 */
export function mangoCallButtonsEnabled() {
    const info = mangoTelephonyInfo();
    return Boolean(info && (info.is_user || info.mode === "softphone"));
}

/**
 * Open a softphone link (sip:, tel:, callto:) without leaving the page.
 *
 * @param {String} url
 */
export function openSoftphoneLink(url) {
    const link = document.createElement("a");
    link.href = url;
    link.rel = "noopener";
    link.className = "d-none";
    document.body.appendChild(link);
    link.click();
    link.remove();
}

export class MangoCallButton extends Component {
    static template = "mango_telephony.CallButton";
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.notification = useService("notification");
        this.state = useState({busy: false, lastLink: ""});
    }

    get number() {
        return this.props.record.data[this.props.name] || "";
    }

    get title() {
        const info = mangoTelephonyInfo() || {};
        return info.mode === "softphone"
            ? _t("Call %s with your softphone", this.number)
            : _t("Call %s through Mango: your phone rings first", this.number);
    }

    async onClick() {
        if (this.state.busy || !this.number) {
            return;
        }
        this.state.busy = true;
        const record = this.props.record;
        try {
            const result = await this.orm.call("res.users", "mango_click_to_call", [
                this.number,
                record.resModel,
                record.resId || false,
            ]);
            if (result.status === "softphone") {
                this.state.lastLink = result.url;
                openSoftphoneLink(result.url);
                this.notification.add(result.message, {
                    title: result.title,
                    type: "info",
                });
            } else {
                this.notification.add(result.message, {
                    title: result.title,
                    type: result.status === "error" ? "danger" : "success",
                    sticky: result.status === "error",
                });
            }
        } finally {
            this.state.busy = false;
        }
    }
}
