/** @odoo-module **/

import {registry} from "@web/core/registry";
import {unloadingStep} from "@mango_telephony/../tests/unloading_step.esm";

// Compact mode: closed for a new visitor; the visitor opens it, asks for a call and
// sees the countdown, then the final text. Collapsing is remembered across reloads.
registry.category("web_tour.tours").add("mango_callback_in_hours", {
    url: "/",
    steps: () => [
        {
            content: "A new visitor sees only the button (compact mode)",
            trigger:
                ".o_mango_callback.o_mango_callback_ready .o_mango_callback_toggle[aria-expanded=false]",
        },
        {
            content: "The panel is closed",
            trigger: ".o_mango_callback_panel:not(:visible)",
        },
        {
            content: "Open the widget",
            trigger: ".o_mango_callback_toggle",
            run: "click",
        },
        {
            content:
                "One action on the open panel: the launcher gives way to its submit",
            trigger:
                ".o_mango_callback_is_open:has(.o_mango_callback_submit:visible) .o_mango_callback_toggle:not(:visible)",
        },
        {
            content: "Type a number",
            trigger: ".o_mango_callback_panel:visible input[name=phone]",
            run: "edit 916 555-12-34",
        },
        {
            content: "Ask for a call",
            trigger: ".o_mango_callback_submit",
            run: "click",
        },
        {
            content: "The countdown runs",
            trigger: ".o_mango_callback_result:visible .o_mango_callback_count",
        },
        {
            content: "It says when we call",
            trigger: ".o_mango_callback_result:contains(We'll call you back in)",
        },
        {
            content: "At zero the final text replaces the countdown",
            trigger:
                ".o_mango_callback_result.o_mango_callback_final:visible:contains(We are calling you now):not(:has(.o_mango_callback_count))",
            timeout: 15000,
        },
    ],
});

registry.category("web_tour.tours").add("mango_callback_after_hours", {
    url: "/",
    steps: () => [
        {
            content:
                "Full mode: the panel is open for a new visitor, without a launcher",
            trigger:
                ".o_mango_callback_ready:has(.o_mango_callback_toggle:not(:visible)) .o_mango_callback_panel:visible input[name=phone]",
            run: "edit 916 555-12-35",
        },
        {
            content: "Ask for a call",
            trigger: ".o_mango_callback_submit",
            run: "click",
        },
        {
            content: "Outside hours the after-hours text is shown",
            trigger: ".o_mango_callback_result:contains(We are closed right now)",
        },
    ],
});

registry.category("web_tour.tours").add("mango_callback_collapse_remembered", {
    url: "/",
    steps: () => [
        {
            content: "Full mode: open at first",
            trigger: ".o_mango_callback_ready .o_mango_callback_panel:visible",
        },
        {
            content: "The visitor collapses it",
            trigger: ".o_mango_callback_close",
            run: "click",
        },
        {
            trigger: ".o_mango_callback_panel:not(:visible)",
        },
        unloadingStep({
            content: "Reload the page",
            trigger: ".o_mango_callback",
            run() {
                // Gone once the page has really reloaded.
                document.body.classList.add("o_mango_before_reload");
                window.location.reload();
            },
        }),
        {
            content: "After the reload it stays collapsed (cookie)",
            trigger:
                "body:not(.o_mango_before_reload) .o_mango_callback.o_mango_callback_ready:not(.o_mango_callback_is_open) .o_mango_callback_toggle[aria-expanded=false]",
        },
    ],
});

// Full mode on a phone: the panel would cover the page, so it starts collapsed;
// the launcher opens it, and then the launcher gives way to the panel's submit.
registry.category("web_tour.tours").add("mango_callback_full_on_phone", {
    url: "/",
    steps: () => [
        {
            content: "Collapsed on a phone despite full mode",
            trigger:
                ".o_mango_callback.o_mango_callback_ready[data-mode=full]:not(.o_mango_callback_is_open) .o_mango_callback_toggle:visible",
        },
        {
            content: "The panel is closed",
            trigger: ".o_mango_callback_panel:not(:visible)",
        },
        {
            content: "Open it",
            trigger: ".o_mango_callback_toggle",
            run: "click",
        },
        {
            content: "One action: the submit, inside the screen",
            trigger:
                ".o_mango_callback_is_open:has(.o_mango_callback_toggle:not(:visible)) .o_mango_callback_submit:visible",
            run() {
                const box = this.anchor.getBoundingClientRect();
                if (box.left < 0 || box.right > window.innerWidth) {
                    throw new Error(
                        `the submit sticks out of the screen: ${box.left}-${box.right}`
                    );
                }
            },
        },
    ],
});
