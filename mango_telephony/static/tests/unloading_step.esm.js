import {session} from "@web/session";

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
    const major = (session.server_version_info || [])[0];
    return major >= 19 ? {...step, expectUnloadPage: true} : step;
}
