import {registry} from "@web/core/registry";

// The test posts one signed body with nothing but an entry_id before the tour.
registry.category("web_tour.tours").add("mango_refused_events_tour", {
    url: "/odoo/action-mango_telephony.mango_telephony_settings_action",
    steps: () => [
        {
            content: "Event delivery counts the refused event",
            trigger:
                "#mango_webhook_health div[name='mango_refused_event_count']:contains(1)",
        },
        {
            content: "Open the refused events from the settings page",
            trigger: "button[name='action_mango_view_refused_events']",
            run: "click",
        },
        {
            content: "The list shows the refused event with its reason",
            trigger:
                ".o_list_view .o_data_row:contains('events/call'):contains('Required field missing')",
        },
        {
            content: "Open it",
            trigger: ".o_list_view .o_data_row .o_data_cell[name='path']",
            run: "click",
        },
        {
            content: "The form shows the reason and the body as received",
            trigger:
                ".o_form_view div[name='reason']:contains('Required field missing')",
        },
        {
            content: "The body is there to read",
            trigger: ".o_form_view div[name='payload']:contains('entry_id')",
        },
    ],
});

// The test posts one valid events/call first.
registry.category("web_tour.tours").add("mango_raw_event_form_tour", {
    url: "/odoo/action-mango_telephony.mango_event_action",
    steps: () => [
        {
            content: "Open the stored event",
            trigger:
                ".o_list_view .o_data_row .o_data_cell[name='path']:contains('events/call')",
            run: "click",
        },
        {
            content: "The form shows the body as received",
            trigger: ".o_form_view div[name='payload']:contains('entry_id')",
        },
    ],
});
