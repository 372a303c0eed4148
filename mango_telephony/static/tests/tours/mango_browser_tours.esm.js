import {registry} from "@web/core/registry";

const tours = registry.category("web_tour.tours");

// The partner form is opened by the test (its id is only known there).
tours.add("mango_click_to_call_tour", {
    steps: () => [
        {
            content: "Focus the phone field so its buttons show",
            trigger: ".o_field_widget[name='phone'] input",
            run: "click",
        },
        {
            content: "The plain tel: link gives way to the PBX call button",
            trigger:
                ".o_field_widget[name='phone']:not(:has(.o_phone_form_link)) .o_mango_call_button",
            run: "click",
        },
        {
            content: "The user is told their phone rings first",
            trigger: ".o_notification:contains(Calling your phone)",
        },
    ],
});

tours.add("mango_softphone_tour", {
    steps: () => [
        {
            content: "Read-only phone field: the number links to tel:, then our button",
            trigger:
                ".o_field_widget[name='phone'] a.o_form_uri ~ .o_mango_call_button",
            run: "click",
        },
        {
            content: "The softphone link carries the number as the PBX expects it",
            trigger: ".o_mango_call_button[data-mango-link='callto:79031234567']",
        },
        {
            content: "The user is told the softphone opens",
            trigger: ".o_notification:contains(Opening your softphone)",
        },
    ],
});

tours.add("mango_incoming_card_tour", {
    steps: () => [
        {
            content: "The telephony systray icon is there",
            trigger: ".o_mango_call_systray",
        },
        {
            content: "The card shows the ringing call with the known customer",
            trigger:
                ".o_mango_call_card[data-state='ringing'] .o_mango_call_card_partner:contains(Olga Customer)",
            timeout: 30000,
        },
        {
            content:
                "A call the group's queue handed to the agent is an incoming call, not a transfer",
            trigger:
                ".o_mango_call_card[data-state='ringing'] .o_mango_call_card_title:contains(Incoming call)",
        },
        {
            content: "The number is written for people",
            trigger:
                ".o_mango_call_card .o_mango_call_card_number:contains(+7 903 123-45-67)",
        },
        {
            content: "The card shows the customer's company and salesperson",
            trigger:
                ".o_mango_call_card:contains(Roga & Kopyta LLC):contains(Boris Sales)",
        },
        {
            content: "The card follows the call once answered",
            trigger: ".o_mango_call_card[data-state='connected']",
            timeout: 30000,
        },
        {
            content: "The card closes itself after the call",
            trigger: "body:not(:has(.o_mango_call_card))",
            timeout: 30000,
        },
    ],
});

tours.add("mango_stats_tour", {
    url: "/odoo/action-mango_telephony.mango_call_stat_dashboard_action",
    steps: () => [
        {
            content: "All time",
            trigger: ".o_mango_call_dashboard .o_mango_period_all",
            run: "click",
        },
        {
            content: "The employee's row is in the table",
            trigger: ".o_mango_dashboard_row:contains(Agent 101)",
        },
        {
            content: "Missed calls are counted",
            trigger: ".o_mango_kpi_missed:contains(1)",
        },
        {
            content: "Per line",
            trigger: ".o_mango_group_line",
            run: "click",
        },
        {
            content: "The line's row is in the table",
            trigger: ".o_mango_dashboard_row:contains(74951234567)",
        },
        {
            content: "Open the pivot and graphs",
            trigger: ".o_mango_call_dashboard button:contains(Pivot and graphs)",
            run: "click",
        },
        {
            content: "The graph shows data",
            trigger: ".o_graph_renderer canvas",
        },
        {
            content: "Switch to the pivot",
            trigger: ".o_switch_view.o_pivot",
            run: "click",
        },
        {
            content: "The pivot has the employee's row",
            trigger: ".o_pivot th:contains(Agent 101)",
        },
    ],
});

/**
 * Every filled phone field of the page shows exactly one call button of ours,
 * and Odoo's own tel: "Call" link gives way to it (the number itself stays a
 * link in read-only mode, like Odoo shows it).
 */
function checkOneCallButtonPerPhoneField() {
    const fields = [...document.querySelectorAll(".o_field_phone")].filter(
        (field) =>
            field.querySelector("a.o_form_uri") ||
            (field.querySelector("input") && field.querySelector("input").value)
    );
    if (!fields.length) {
        throw new Error("No filled phone field on the page");
    }
    for (const field of fields) {
        const name = field.getAttribute("name");
        const buttons = field.querySelectorAll(".o_mango_call_button").length;
        if (buttons !== 1) {
            throw new Error(`Phone field ${name}: ${buttons} call buttons`);
        }
        if (field.querySelector(".o_phone_form_link")) {
            throw new Error(`Phone field ${name}: Odoo's tel: link is still there`);
        }
    }
}

// Opened by the test on a partner, lead or employee form, editable or not.
tours.add("mango_phone_buttons_tour", {
    steps: () => [
        {
            // In edit mode Odoo shows a phone field's buttons on hover only.
            content: "The form is loaded with its phone fields",
            trigger: ".o_form_view .o_field_phone",
        },
        {
            content: "One call button per phone field, no second Call link",
            trigger: ".o_form_view .o_field_phone",
            run: checkOneCallButtonPerPhoneField,
        },
    ],
});

tours.add("mango_phone_buttons_list_tour", {
    steps: () => [
        {
            content: "The list is loaded with its call buttons",
            trigger: ".o_list_view .o_field_phone .o_mango_call_button",
        },
        {
            content: "One call button per phone cell",
            trigger: ".o_list_view .o_field_phone .o_mango_call_button",
            run: checkOneCallButtonPerPhoneField,
        },
    ],
});

// Opened by the test on the call log with an outgoing call of Agent 101.
tours.add("mango_call_log_tour", {
    steps: () => [
        {
            content:
                "The outgoing call names the employee and the line, not a SIP device",
            trigger:
                ".o_list_view .o_data_row td[name='from_display']:contains(Agent 101 (101) · +7 495 123-45-67)",
        },
        {
            content: "The customer's number is written for people",
            trigger:
                ".o_list_view .o_data_row td[name='to_display']:contains(+7 903 123-45-67)",
        },
        {
            content: "No raw SIP address anywhere in the list",
            trigger: ".o_list_view:not(:contains(sip:))",
        },
        {
            content: "65 seconds of talk read 01:05",
            trigger:
                ".o_list_view .o_data_row td[name='talk_duration']:contains(01:05)",
        },
        {
            content: "The total talk time is a duration too",
            trigger: ".o_list_view tfoot:contains(01:05)",
        },
        {
            content: "Open the call",
            trigger: ".o_list_view .o_data_row td[name='from_display']",
            run: "click",
        },
        {
            content: "The form shows the durations as mm:ss",
            trigger:
                ".o_form_view .o_field_widget[name='talk_duration']:contains(01:05)",
        },
        {
            content: "Waiting time too",
            trigger:
                ".o_form_view .o_field_widget[name='wait_duration']:contains(00:12)",
        },
        {
            content: "The parties are the employee with the line, and the customer",
            trigger:
                ".o_form_view .o_field_widget[name='from_display']:contains(Agent 101 (101))",
        },
    ],
});
