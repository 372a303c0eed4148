import {_t} from "@web/core/l10n/translation";
import {reactive} from "@odoo/owl";
import {registry} from "@web/core/registry";
import {session} from "@web/session";

// How long an ended call's card stays before closing itself (unless the user's
// preference "Keep the call card after the call" is ticked).
export const ENDED_CARD_DELAY = 6000;

/**
 * Incoming-call cards pushed by the server on the bus ("mango_call_card"): one
 * card per call leg ringing the current user, following it from ringing to
 * connected to ended.
 */
export const mangoCallCardService = {
    dependencies: ["bus_service", "orm", "action", "multi_tab"],

    start(env, {bus_service: busService, orm, action, multi_tab: multiTab}) {
        const info = session.mango_telephony || {};
        const state = reactive({cards: []});
        const timers = new Map();

        const held = new Set();

        function remove(key) {
            const index = state.cards.findIndex((card) => card.key === key);
            if (index >= 0) {
                state.cards.splice(index, 1);
            }
            clearTimeout(timers.get(key));
            timers.delete(key);
            held.delete(key);
        }

        /**
         * An ended call's card closes itself after ENDED_CARD_DELAY, unless the
         * user keeps ended cards (preferences) or has the pointer on it.
         *
         * @param {String} key
         */
        function scheduleClose(key) {
            const card = state.cards.find((item) => item.key === key);
            clearTimeout(timers.get(key));
            timers.delete(key);
            if (!card || card.state !== "ended" || info.keep_ended_cards) {
                return;
            }
            if (!held.has(key)) {
                timers.set(
                    key,
                    setTimeout(() => remove(key), ENDED_CARD_DELAY)
                );
            }
        }

        function hold(key) {
            held.add(key);
            clearTimeout(timers.get(key));
            timers.delete(key);
        }

        function release(key) {
            held.delete(key);
            scheduleClose(key);
        }

        function desktopNotify(card) {
            // Only when the user cannot see the tab, only if already granted, and
            // from a single tab: asking or failing must never get in the way.
            if (
                !info.desktop_notify ||
                !document.hidden ||
                !("Notification" in window) ||
                window.Notification.permission !== "granted" ||
                !multiTab.isOnMainTab()
            ) {
                return;
            }
            try {
                const title = card.partner ? card.partner.name : card.number;
                const notification = new window.Notification(_t("Incoming call"), {
                    body: title,
                    tag: `mango-call-${card.key}`,
                });
                notification.onclick = () => {
                    window.focus();
                    notification.close();
                };
            } catch {
                // Some browsers only allow notifications from a service worker.
            }
        }

        function openPartner(card) {
            if (!card.partner) {
                return;
            }
            action.doAction({
                type: "ir.actions.act_window",
                res_model: "res.partner",
                res_id: card.partner.id,
                views: [[false, "form"]],
                target: "current",
            });
        }

        function upsert(payload) {
            if (!payload || !payload.key) {
                return;
            }
            const existing = state.cards.find((card) => card.key === payload.key);
            const previousState = existing ? existing.state : null;
            if (!existing && payload.state === "ended") {
                return;
            }
            if (existing) {
                Object.assign(existing, payload);
            } else {
                state.cards.push({...payload, dismissed: false});
                if (payload.state === "ringing") {
                    desktopNotify(payload);
                }
            }
            if (
                payload.state === "connected" &&
                previousState !== "connected" &&
                info.open_form_on_answer &&
                payload.partner &&
                multiTab.isOnMainTab()
            ) {
                openPartner(payload);
            }
            if (payload.state === "ended" && previousState !== "ended") {
                scheduleClose(payload.key);
            }
        }

        if (info.is_user) {
            busService.subscribe("mango_call_card", upsert);
            busService.start();
            // A tab opened while the phone already rings shows that call too.
            orm.silent
                .call("mango.call", "mango_active_cards", [])
                .then((cards) => cards.forEach(upsert))
                .catch(() => {
                    // Not fatal: the next bus message brings the card.
                });
        }

        return {
            state,
            upsert,
            remove,
            hold,
            release,
            openPartner,
            get desktopPermission() {
                return "Notification" in window
                    ? window.Notification.permission
                    : "denied";
            },
            async requestDesktopPermission() {
                if (!("Notification" in window)) {
                    return "denied";
                }
                try {
                    return await window.Notification.requestPermission();
                } catch {
                    return "denied";
                }
            },
        };
    },
};

registry.category("services").add("mango_call_card", mangoCallCardService);
