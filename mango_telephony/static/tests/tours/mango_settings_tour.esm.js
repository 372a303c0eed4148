import {registry} from "@web/core/registry";
import {unloadingStep} from "@mango_telephony/../tests/unloading_step.esm";

const SALT = "tourSaltTypedInTheSettings000004";

registry.category("web_tour.tours").add("mango_telephony_settings_tour", {
    url: "/odoo/action-mango_telephony.mango_telephony_settings_action",
    steps: () => [
        {
            content: "The IP telephony settings show the company's account",
            trigger:
                ".app_settings_block[data-key='mango_telephony'] #mango_credentials",
        },
        {
            content: "The event address can be copied",
            trigger:
                "#mango_webhook_url div[name='mango_webhook_base_url'] .o_clipboard_button",
        },
        {
            content: "Type a new salt into the masked field",
            trigger:
                "#mango_credentials div[name='mango_api_salt_input'] input[type='password']",
            run: `edit ${SALT}`,
        },
        unloadingStep({
            content: "Save the settings",
            trigger: ".o_form_button_save",
            async run(helpers) {
                // Saving reloads the page: the mark tells the old page from the new.
                document.body.classList.add("o_mango_tour_unsaved_page");
                await helpers.click();
            },
        }),
        {
            content: "The settings come back on IP telephony after the reload",
            trigger:
                "body:not(.o_mango_tour_unsaved_page) .app_settings_block[data-key='mango_telephony'] #mango_credentials",
        },
        {
            content: "The saved state is shown",
            trigger: "#mango_credentials .text-muted:contains('never shown again')",
        },
        {
            content: "Once saved, the salt is not shown again",
            trigger: "#mango_credentials div[name='mango_api_salt_input'] input",
            run() {
                if (this.anchor.value) {
                    throw new Error("The saved salt came back to the browser");
                }
            },
        },
        {
            content: "Test the connection with the saved salt",
            trigger: "button[name='action_mango_test_connection']",
            run: "click",
        },
        {
            content: "Mango (the simulator) accepted the key and salt",
            trigger:
                ".o_notification:contains('Connection to the server was established successfully')",
        },
        {
            content: "The status says connected",
            trigger: "#mango_connection_status .badge:contains('Connected')",
        },
        {
            content: "Open the account",
            trigger: "button[name='action_mango_open_account']",
            run: "click",
        },
        {
            content: "The account form shows the event address, ready to copy",
            trigger: ".o_form_view div[name='webhook_base_url'] .o_clipboard_button",
        },
        {
            content: "The salt field of the account is empty",
            trigger: ".o_form_view div[name='api_salt_input'] input",
            run() {
                if (this.anchor.value) {
                    throw new Error("The account form received the salt");
                }
            },
        },
    ],
});
