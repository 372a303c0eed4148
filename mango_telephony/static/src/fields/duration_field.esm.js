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
