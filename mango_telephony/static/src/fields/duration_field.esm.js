import {Component} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {registry} from "@web/core/registry";
import {standardFieldProps} from "@web/views/fields/standard_field_props";

/**
 * A call duration kept in seconds, as people read it: "00:42", "12:05",
 * "1:02:03". Odoo's float_time reads its value as hours, so it cannot be used
 * for seconds.
 *
 * @param {Number|false} seconds
 * @returns {String}
 */
export function formatMangoDuration(seconds) {
    if (seconds === false || seconds === null || seconds === undefined) {
        return "";
    }
    const value = Number(seconds);
    if (!Number.isFinite(value)) {
        return "";
    }
    const total = Math.round(Math.abs(value));
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const rest = total % 60;
    const pad = (number) => String(number).padStart(2, "0");
    const text = hours
        ? `${hours}:${pad(minutes)}:${pad(rest)}`
        : `${pad(minutes)}:${pad(rest)}`;
    return value < 0 ? `-${text}` : text;
}

// [unit, seconds] pairs from the largest: a duration is written with its two
// largest units ("1 h 6 min"), seconds only below an hour.
const WORD_UNITS = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
];

/**
 * A duration in words, unambiguous where "29:04" could be a time of day or
 * hours and minutes: "36 s", "29 min 4 s", "1 h 6 min", "2 d 3 h". The units are
 * written in the user's language by the browser (Intl, luxon's locale).
 *
 * @param {Number|false} seconds
 * @returns {String} "" for no value
 */
export function formatMangoDurationWords(seconds) {
    if (seconds === false || seconds === null || seconds === undefined) {
        return "";
    }
    const value = Number(seconds);
    if (!Number.isFinite(value)) {
        return "";
    }
    let total = Math.round(Math.abs(value));
    const first = WORD_UNITS.findIndex(([, size]) => total >= size);
    const units = first < 0 ? [WORD_UNITS[3]] : WORD_UNITS.slice(first, first + 2);
    // Round to the smaller unit shown: 1 h 5 min 40 s reads 1 h 6 min.
    const smallest = units[units.length - 1][1];
    total = Math.round(total / smallest) * smallest;
    const locale = luxon.Settings.defaultLocale || undefined;
    const parts = [];
    let rest = total;
    for (const [unit, size] of units) {
        const amount = Math.floor(rest / size);
        rest -= amount * size;
        if (amount || (!parts.length && unit === units[units.length - 1][0])) {
            parts.push(
                new Intl.NumberFormat(locale, {
                    style: "unit",
                    unit,
                    unitDisplay: "short",
                }).format(amount)
            );
        }
    }
    const text = parts.join(" ");
    return value < 0 ? `-${text}` : text;
}

export class MangoDurationField extends Component {
    static template = "mango_telephony.DurationField";
    static props = {...standardFieldProps};

    get formattedValue() {
        return formatMangoDuration(this.props.record.data[this.props.name]);
    }
}

export const mangoDurationField = {
    component: MangoDurationField,
    displayName: _t("Duration (seconds as h:mm:ss)"),
    supportedTypes: ["integer", "float"],
    isEmpty: () => false,
};

registry.category("fields").add("mango_duration", mangoDurationField);
// List totals and averages, pivot measures: they look formatters up by widget name.
registry.category("formatters").add("mango_duration", formatMangoDuration);
