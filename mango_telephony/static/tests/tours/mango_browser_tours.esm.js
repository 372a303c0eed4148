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
