import {ENDED_CARD_DELAY} from "@mango_telephony/incoming_card/call_card_service.esm";
import {formatMangoDurationWords} from "@mango_telephony/fields/duration_field.esm";
import {registry} from "@web/core/registry";
import {user} from "@web/core/user";

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
            async run(helpers) {
                // Handing callto: to the softphone is the browser's job, not the
                // page's: stop it here (Odoo 19.0's tours take that navigation
                // attempt for the page unloading).
                document.addEventListener(
                    "click",
                    (event) => {
                        if (event.target.closest?.("a[href^='callto:']")) {
                            event.preventDefault();
                        }
                    },
                    {capture: true}
                );
                await helpers.click();
            },
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

// The words the card's "last calls" lines must show, per language of the user.
const LAST_CALL_WORDS = {
    en: {words: ["Incoming", "Answered"], english: []},
    ru: {words: ["Входящий", "Отвечен"], english: ["Incoming", "Answered"]},
    fi: {words: ["Saapuva", "Vastattu"], english: ["Incoming", "Answered"]},
};

/**
 * The ringing card's "last calls": in the user's language, the talk time in
 * words, and nothing cut, the employee's whole name included.
 */
function checkLastCallLines() {
    const card = document.querySelector(".o_mango_call_card[data-state='ringing']");
    const expected = LAST_CALL_WORDS[user.lang.split("-")[0]] || LAST_CALL_WORDS.en;
    const first = card.querySelector(".o_mango_call_card_calls").textContent;
    for (const word of expected.words) {
        if (!first.includes(word)) {
            throw new Error(`"${word}" missing from the last call: ${first}`);
        }
    }
    for (const word of expected.english) {
        if (first.includes(word)) {
            throw new Error(`English "${word}" in a ${user.lang} card: ${first}`);
        }
    }
    const lines = [...card.querySelectorAll(".o_mango_call_card_call")];
    if (!lines.length) {
        throw new Error("The last calls are not one block per call");
    }
    const what = lines[0].querySelector(".o_mango_call_card_call_what").textContent;
    if (/\d:\d\d/.test(what) || !/2\D+17/.test(what)) {
        throw new Error(`The talk time is not written in words: ${what}`);
    }
    const name = lines[0].querySelector(".o_mango_call_card_call_user");
    if (!name || !name.textContent.includes("Mikaela Virtanen-Lindqvist")) {
        throw new Error(
            `The employee's name is not whole: ${name && name.textContent}`
        );
    }
    const cut = [...card.querySelectorAll("*")].filter(
        (el) =>
            !el.children.length &&
            getComputedStyle(el).display !== "inline" &&
            el.scrollWidth > el.clientWidth + 1
    );
    if (cut.length) {
        throw new Error(`Cut text on the card: ${cut.map((el) => el.textContent)}`);
    }
}

function cardUntilEndedSteps() {
    return [
        {
            content: "The telephony systray icon is there",
            trigger: ".o_mango_call_systray",
        },
        {
            content: "The card rings with the customer's last calls",
            trigger:
                ".o_mango_call_card[data-state='ringing'] .o_mango_call_card_calls",
            timeout: 30000,
        },
        {
            content: "Its lines are in the user's language and nothing is cut",
            trigger:
                ".o_mango_call_card[data-state='ringing'] .o_mango_call_card_calls",
            run: checkLastCallLines,
        },
        {
            content: "The call ends",
            trigger: ".o_mango_call_card[data-state='ended']",
            timeout: 30000,
        },
    ];
}

tours.add("mango_incoming_card_closes_tour", {
    steps: () => [
        ...cardUntilEndedSteps(),
        {
            content: "A few seconds later the card has closed itself",
            trigger: "body:not(:has(.o_mango_call_card))",
            timeout: ENDED_CARD_DELAY + 10000,
        },
    ],
});

tours.add("mango_incoming_card_kept_tour", {
    steps: () => [
        ...cardUntilEndedSteps(),
        {
            content: "Wait well past the delay after which cards close by themselves",
            trigger: ".o_mango_call_card[data-state='ended']",
            run: () =>
                new Promise((resolve) => setTimeout(resolve, ENDED_CARD_DELAY + 3000)),
        },
        {
            content: "The user keeps ended cards: it is still there",
            trigger: ".o_mango_call_card[data-state='ended'] .btn-close",
            run: "click",
        },
        {
            content: "Closed by the user",
            trigger: "body:not(:has(.o_mango_call_card))",
        },
    ],
});

/**
 * "Calls over time" reads like a chart: a value axis from 0 with round steps, a
 * date under the bars, and each bar telling its day and count.
 *
 * @param {Number} bars how many bars the period has
 */
function checkSeriesChart(bars) {
    const chart = document.querySelector(".o_mango_series");
    const ticks = [...chart.querySelectorAll(".o_mango_series_ytick")].map((el) =>
        Number(el.textContent)
    );
    if (ticks.length < 2 || ticks[0] !== 0 || ticks.some((value) => isNaN(value))) {
        throw new Error(`No value axis: ${ticks}`);
    }
    const columns = chart.querySelectorAll(".o_mango_series_bar");
    const labels = [...chart.querySelectorAll(".o_mango_series_xlabel")];
    if (columns.length !== bars || labels.length !== bars) {
        throw new Error(
            `${columns.length} bars, ${labels.length} labels: ${bars} expected`
        );
    }
    const shown = labels.filter((el) => el.textContent.trim());
    if (shown.length < Math.min(bars, 2)) {
        throw new Error(
            `No date under the bars: ${labels.map((el) => el.textContent)}`
        );
    }
    const withCalls = [...columns].filter((el) => Number(el.dataset.calls));
    if (!withCalls.length || !withCalls.every((el) => /\d/.test(el.title))) {
        throw new Error("The bars do not tell their day and count");
    }
    const highest = Math.max(...[...columns].map((el) => Number(el.dataset.calls)));
    if (ticks[ticks.length - 1] < highest) {
        throw new Error(`The axis stops at ${ticks.at(-1)}, below ${highest}`);
    }
}

/**
 * Durations read as durations: "12 s", "1 min", never "0:12".
 */
function checkDashboardDurations() {
    const row = [...document.querySelectorAll(".o_mango_dashboard_row")].find((el) =>
        el.textContent.includes("Agent 101")
    );
    const text = row.textContent;
    for (const seconds of [12, 60]) {
        const words = formatMangoDurationWords(seconds);
        if (!text.includes(words)) {
            throw new Error(`"${words}" missing from the row: ${text}`);
        }
    }
    const table = document.querySelector(".o_mango_dashboard_table").textContent;
    const kpis = document.querySelector(".o_mango_kpis").textContent;
    if (/\d:\d\d/.test(table + kpis)) {
        throw new Error(`A duration still reads like a clock: ${table}`);
    }
}

tours.add("mango_stats_tour", {
    url: "/odoo/action-mango_telephony.mango_call_stat_dashboard_action",
    steps: () => [
        {
            content: "This week's chart: seven days, labelled, over a value axis",
            trigger: ".o_mango_call_dashboard .o_mango_series",
            run: () => checkSeriesChart(7),
        },
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
            content: "Waits and talk times are durations in words",
            trigger: ".o_mango_dashboard_row:contains(Agent 101)",
            run: checkDashboardDurations,
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

// The dashboard read by a Russian supervisor (test_statistics_in_russian).
tours.add("mango_stats_l10n_tour", {
    url: "/odoo/action-mango_telephony.mango_call_stat_dashboard_action",
    steps: () => [
        {
            content: "All time",
            trigger: ".o_mango_call_dashboard .o_mango_period_all",
            run: "click",
        },
        {
            content: "Three of four calls answered, in the reader's notation",
            // 75 whatever the notation: the all-time figures have loaded.
            trigger: ".o_mango_call_dashboard .o_mango_kpi_rate:contains(75)",
            run: () => {
                const rate = document
                    .querySelector(".o_mango_kpi_rate")
                    .textContent.trim();
                if (rate !== "75,0 %") {
                    throw new Error(`Answer rate "${rate}", expected "75,0 %"`);
                }
                const row = [
                    ...document.querySelectorAll(".o_mango_dashboard_row"),
                ].find((el) => el.textContent.includes("Agent 101"));
                if (!row || !row.textContent.includes("75,0 %")) {
                    throw new Error(`Row rate: ${row && row.textContent}`);
                }
                if (!row.textContent.includes(formatMangoDurationWords(12))) {
                    throw new Error(`The wait is not in words: ${row.textContent}`);
                }
            },
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

/**
 * Each call button can be seen without the pointer on its field (Odoo hides a
 * phone field's links in edit mode until hovered): checked with the pointer
 * elsewhere, as a user reading the form has it.
 */
function checkCallButtonsShown() {
    const hovered = document.querySelector(
        ".o_field_phone:hover, .o_field_phone:focus-within"
    );
    if (hovered) {
        throw new Error("The pointer or the focus is on a phone field: nothing proved");
    }
    for (const button of document.querySelectorAll(
        ".o_field_phone .o_mango_call_button"
    )) {
        const style = getComputedStyle(button);
        if (
            style.display === "none" ||
            style.visibility === "hidden" ||
            !button.getClientRects().length
        ) {
            throw new Error(
                `Call button of ${button.closest(".o_field_phone").getAttribute("name")} hidden`
            );
        }
    }
}

// Opened by the test on a partner, lead or employee form, editable or not.
tours.add("mango_phone_buttons_tour", {
    steps: () => [
        {
            content: "The form is loaded with its phone fields",
            trigger: ".o_form_view .o_field_phone",
        },
        {
            content: "The call buttons are there without hovering",
            trigger: ".o_form_view .o_field_phone",
            run: checkCallButtonsShown,
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
        {
            content: "Lists stay tidy: the phone icon without its word",
            trigger: ".o_list_view .o_field_phone .o_mango_call_button",
            run: () => {
                for (const label of document.querySelectorAll(
                    ".o_list_view .o_mango_call_button .o_mango_call_label"
                )) {
                    if (getComputedStyle(label).display !== "none") {
                        throw new Error("A list's call button spells out its word");
                    }
                }
            },
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
