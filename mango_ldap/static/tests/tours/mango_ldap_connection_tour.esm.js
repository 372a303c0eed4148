import {registry} from "@web/core/registry";

// The directory form is opened by the test; Test connection answers at once in a
// notification and on the form itself.
registry.category("web_tour.tours").add("mango_ldap_connection_ok_tour", {
    steps: () => [
        {
            content: "Nothing checked yet",
            trigger:
                ".o_form_view .o_field_widget[name='connection_state']:contains(Not checked)",
        },
        {
            content: "Test the connection",
            trigger: ".o_form_view button[name='action_test_connection']",
            run: "click",
        },
        {
            content: "A notification says what was found",
            trigger:
                ".o_notification:contains(Connection test: UI directory):contains(Entries matching the search bases and filters: 20.)",
            timeout: 30000,
        },
        {
            content: "The form shows the stored status without a reload",
            trigger:
                ".o_form_view .o_field_widget[name='connection_state']:contains(Connected)",
        },
        {
            content: "…and the last check, at the top of the Connection tab",
            trigger:
                ".o_form_view .o_field_widget[name='connection_message']:contains(signed in as)",
        },
    ],
});

registry.category("web_tour.tours").add("mango_ldap_connection_failed_tour", {
    steps: () => [
        {
            content: "Test the connection",
            trigger: ".o_form_view button[name='action_test_connection']",
            run: "click",
        },
        {
            content: "The notification names the problem and stays",
            trigger:
                ".o_notification:has(.bg-danger):contains(cannot be reached):contains(check the host name)",
            timeout: 30000,
        },
        {
            content: "The form shows the failure",
            trigger:
                ".o_form_view .o_field_widget[name='connection_state']:contains(Failed)",
        },
        {
            content: "No error dialog",
            trigger: "body:not(:has(.o_error_dialog))",
        },
    ],
});

registry.category("web_tour.tours").add("mango_ldap_connection_incomplete_tour", {
    steps: () => [
        {
            content: "Test the connection of a directory without a search base",
            trigger: ".o_form_view button[name='action_test_connection']",
            run: "click",
        },
        {
            content: "A warning says what to add, not a traceback",
            trigger:
                ".o_notification:has(.bg-warning):contains(Add at least one search base)",
            timeout: 30000,
        },
        {
            content: "No error dialog",
            trigger: "body:not(:has(.o_error_dialog))",
        },
    ],
});
