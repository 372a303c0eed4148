import {PhoneField} from "@web/views/fields/phone/phone_field";
import {MangoCallButton, mangoCallButtonsEnabled} from "./call_button.esm";
import {patch} from "@web/core/utils/patch";

// Every field using the phone widget (contacts, leads, employees, orders…) gets a
// button that calls through Mango or opens the user's softphone.
// FormPhoneField inherits these statics, so the form variant gets them too.
patch(PhoneField, {
    components: {...PhoneField.components, MangoCallButton},
});

patch(PhoneField.prototype, {
    get mangoCallEnabled() {
        return (
            mangoCallButtonsEnabled() &&
            Boolean(this.props.record.data[this.props.name])
        );
    },
});
