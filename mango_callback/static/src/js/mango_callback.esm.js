/** @odoo-module **/

import {cookie} from "@web/core/browser/cookie";
import publicWidget from "@web/legacy/js/public/public_widget";

// The visitor's own open/closed choice; the configured mode applies to new visitors.
const STATE_COOKIE = "mango_callback_open";
const STATE_TTL = 60 * 60 * 24 * 180;
// Bootstrap's "xs": on a phone the open panel would cover the page the visitor
// came to read, so full mode starts collapsed there.
const PHONE_QUERY = "(max-width: 575.98px)";

async function postForm(url, form) {
    const response = await fetch(url, {
        method: "POST",
        body: new FormData(form),
        headers: {Accept: "application/json"},
    });
    return response.json();
}

publicWidget.registry.MangoCallback = publicWidget.Widget.extend({
    selector: ".o_mango_callback",
    events: {
        "click .o_mango_callback_toggle": "_onToggle",
        "click .o_mango_callback_close": "_onClose",
        "submit .o_mango_callback_form": "_onSubmit",
        "input input[name=phone]": "_onPhoneInput",
        "keydown .o_mango_callback_panel": "_onKeydown",
    },

    start() {
        this.panel = this.el.querySelector(".o_mango_callback_panel");
        this.toggle = this.el.querySelector(".o_mango_callback_toggle");
        this.form = this.el.querySelector(".o_mango_callback_form");
        this.result = this.el.querySelector(".o_mango_callback_result");
        const remembered = cookie.get(STATE_COOKIE);
        const open = remembered
            ? remembered === "1"
            : this.el.dataset.mode === "full" &&
              !window.matchMedia(PHONE_QUERY).matches;
        this._setOpen(open, false);
        this.el.classList.add("o_mango_callback_ready");
        this._openers = [...document.querySelectorAll("[data-mango-callback-open]")];
        this._onOpener = (ev) => {
            ev.preventDefault();
            this._setOpen(true, true);
        };
        for (const opener of this._openers) {
            opener.addEventListener("click", this._onOpener);
        }
        return this._super(...arguments);
    },

    destroy() {
        for (const opener of this._openers || []) {
            opener.removeEventListener("click", this._onOpener);
        }
        clearInterval(this._timer);
        clearTimeout(this._checkTimer);
        this._super(...arguments);
    },

    _setOpen(open, byVisitor) {
        this.panel.hidden = !open;
        // The open panel has its own close button and one action, its submit:
        // a launcher labelled like that submit beside it would be a second one.
        this.toggle.hidden = open;
        this.toggle.setAttribute("aria-expanded", String(open));
        this.el.classList.toggle("o_mango_callback_is_open", open);
        if (byVisitor) {
            cookie.set(STATE_COOKIE, open ? "1" : "0", STATE_TTL, "optional");
            if (open) {
                this.form.querySelector("input[name=phone]").focus();
            } else {
                this.toggle.focus();
            }
        }
        if (open && this.el.dataset.slots && !this._slotsLoaded) {
            this._slotsLoaded = true;
            this._loadSlots();
        }
    },

    async _loadSlots() {
        const url = `/mango_callback/slots?widget_id=${this.el.dataset.widgetId}`;
        const data = await (
            await fetch(url, {headers: {Accept: "application/json"}})
        ).json();
        if (!data.slots || !data.slots.length) {
            return;
        }
        const select = this.form.querySelector("select[name=slot]");
        for (const slot of data.slots) {
            select.add(new Option(slot.label, slot.value));
        }
        select.closest(".o_mango_callback_slot").hidden = false;
    },

    _onToggle() {
        this._setOpen(this.panel.hidden, true);
    },

    _onClose() {
        this._setOpen(false, true);
    },

    _onKeydown(ev) {
        if (ev.key === "Escape") {
            this._setOpen(false, true);
        }
    },

    _showErrors(errors) {
        for (const node of this.form.querySelectorAll("[data-error]")) {
            const message = errors[node.dataset.error] || "";
            node.textContent = message;
            const field = this.form.querySelector(`[name=${node.dataset.error}]`);
            if (field) {
                field.classList.toggle("is-invalid", Boolean(message));
                field.setAttribute("aria-invalid", String(Boolean(message)));
            }
        }
    },

    _onPhoneInput() {
        clearTimeout(this._checkTimer);
        this._checkTimer = setTimeout(async () => {
            const phone = this.form.querySelector("input[name=phone]").value;
            if (phone.replace(/\D/g, "").length < 5) {
                return;
            }
            const data = await postForm("/mango_callback/check", this.form);
            this._showErrors(data.errors || {});
        }, 500);
    },

    async _onSubmit(ev) {
        ev.preventDefault();
        const submit = this.form.querySelector(".o_mango_callback_submit");
        submit.disabled = true;
        let data = {};
        try {
            data = await postForm(this.form.action, this.form);
        } catch {
            data = {ok: false, message: this.form.dataset.networkError || ""};
        } finally {
            submit.disabled = false;
        }
        this._showErrors(data.errors || {});
        if (data.errors && Object.keys(data.errors).length) {
            return;
        }
        this._showResult(data);
    },

    _showResult(data) {
        const message = data.message || "";
        this.result.replaceChildren();
        this.result.classList.toggle("text-danger", !data.ok);
        if (data.ok) {
            this.form.hidden = true;
        }
        clearInterval(this._timer);
        if (data.status === "calling") {
            this._countDown(message, Number(data.seconds) || 0, data.final_message);
        } else {
            this.result.textContent = message;
        }
        this.result.hidden = false;
    },

    /**
     * "We'll call you back in N seconds", N counting down; at zero the final text
     * (the call is on its way) replaces it: a promise stuck at "0 seconds" reads
     * as a broken one.
     *
     * @param {String} message the text, with {seconds} where N goes
     * @param {Number} seconds N
     * @param {String} finalMessage shown once N reaches zero
     */
    _countDown(message, seconds, finalMessage) {
        let left = seconds;
        let counter = null;
        if (message.includes("{seconds}")) {
            const [before, after] = message.split("{seconds}", 2);
            counter = document.createElement("strong");
            counter.className = "o_mango_callback_count";
            counter.textContent = String(left);
            this.result.append(before, counter, after);
        } else {
            this.result.textContent = message;
        }
        const finish = () => {
            clearInterval(this._timer);
            if (finalMessage) {
                this.result.replaceChildren(finalMessage);
                this.result.classList.add("o_mango_callback_final");
            } else if (counter) {
                counter.textContent = "0";
            }
        };
        if (left <= 0) {
            finish();
            return;
        }
        this._timer = setInterval(() => {
            left -= 1;
            if (left <= 0) {
                finish();
            } else if (counter) {
                counter.textContent = String(left);
            }
        }, 1000);
    },
});

export default publicWidget.registry.MangoCallback;
