/* global odoo */
import {session} from "@web/session";

/**
 * Whether the running tour engine wants unloading steps marked: 19.0's does,
 * 18.0's refuses the key as unknown. Logged-in users get the server's version;
 * a public visitor (the website's tours) does not, so there the engine is
 * recognised by the module 19.0 moved it to.
 *
 * @returns {Boolean}
 */
function tourEngineWantsUnloadMarks() {
    const major = (session.server_version_info || [])[0];
    if (major) {
        return major >= 19;
    }
    return Boolean(
        odoo.loader.modules.get("@web_tour/js/tour_automatic/tour_automatic")
    );
}

/**
 * A tour step whose `run` unloads the page (a save that reloads it, a reload).
 *
 * Odoo 19.0 wants such a step marked `expectUnloadPage`, or it fails the tour
 * for fear of running on against a page that is going away; Odoo 18.0 refuses
 * the key as unknown. The tours of both series declare the step through this.
 *
 * @param {Object} step a tour step
 * @returns {Object} the step, marked where the running Odoo asks for it
 */
export function unloadingStep(step) {
    return tourEngineWantsUnloadMarks() ? {...step, expectUnloadPage: true} : step;
}
