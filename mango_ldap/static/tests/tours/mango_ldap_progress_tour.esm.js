import {registry} from "@web/core/registry";

// The run form is opened by the test, which then plays the run's progress on the bus.
registry.category("web_tour.tours").add("mango_ldap_progress_tour", {
    steps: () => [
        {
            content: "A running run shows its progress box",
            trigger: ".o_form_view .o_mango_ldap_progress[data-state='running']",
        },
        {
            content: "While the directory is read, entries are counted",
            trigger: ".o_mango_ldap_progress_counter:contains(250 entries read)",
            timeout: 30000,
        },
        {
            content: "While applying, a bar shows changes done of the total",
            trigger:
                ".o_mango_ldap_progress:contains(120 of 400 changes) .progress-bar[aria-valuenow='30']",
            timeout: 30000,
        },
        {
            content: "The end is announced with the outcome",
            trigger:
                ".o_notification:contains(Tour directory):contains(Finished: 3 created, 2 updated)",
            timeout: 30000,
        },
        {
            content: "The form reloads and shows the final counts",
            trigger: ".o_form_view .o_field_widget[name='created_count']:contains(3)",
        },
        {
            content: "The notification opens the run",
            trigger: ".o_notification button:contains(Open the run)",
            run: "click",
        },
        {
            content: "Back on the finished run",
            trigger:
                ".o_form_view .o_field_widget[name='state'] button[aria-checked='true']:contains(Done)",
        },
    ],
});
