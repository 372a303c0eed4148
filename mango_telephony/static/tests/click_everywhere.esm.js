/**
 * The browser half of the click-everywhere tests (tests/click_everywhere.py).
 *
 * mangoClickEverywhere(steps, withClickbot) opens, as the logged-in user, every view
 * the server listed in `steps` (each view type of each window action, an existing
 * record's form with its notebook pages and smart buttons, a new record's form,
 * wizards), then hands over to web's own clickbot for the menus the server left in
 * the menu tree. It fails on the first error dialog, failed request, console error
 * or view that does not show, naming the step.
 *
 * Waiting is the clickbot's: a step is done when its view is on screen, no request is
 * in flight and no OWL render is pending; never a fixed delay.
 */
import {App} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {rpcBus} from "@web/core/network/rpc";
import {startClickEverywhere} from "@web/webclient/clickbot/clickbot_loader";

export const WALK_SUCCEEDED = "mango click everywhere succeeded";
const SETTLE_TIMEOUT = 30000;

const pendingRequests = new Map();
let failedRequest = null;
// What is on screen, for the failure message.
let current = "the home page (the first menu's action)";

function onRequest({detail}) {
    pendingRequests.set(detail.data.id, detail.url);
}

function onResponse({detail}) {
    pendingRequests.delete(detail.data.id);
    // A request the client aborted itself (a newer search replaced it) is no error.
    if (detail.error && detail.error.name !== "ConnectionAbortedError") {
        failedRequest = detail;
        // Said at once: the component that made the request fails next, with a
        // console error that names no model and shows no traceback.
        browser.console.error(`${current}: ${describeFailedRequest()}`);
    }
}

function scheduledRenders() {
    let count = 0;
    for (const app of App.apps) {
        count += app.scheduler.tasks.size;
    }
    return count;
}

function describeFailedRequest() {
    const {data, error} = failedRequest;
    const params = data.params || {};
    const where = params.model ? ` ${params.model}.${params.method}` : "";
    const debug = (error.data && error.data.debug) || error.message || String(error);
    return `request${where} failed:\n${debug}`;
}

function nextFrame() {
    return new Promise((resolve) =>
        browser.setTimeout(() => requestAnimationFrame(resolve))
    );
}

/**
 * Resolves once `isShown()` holds, no request is in flight and nothing waits to
 * render, twice in a row across an animation frame; throws on an error dialog or
 * a failed request at any time.
 */
async function settle(what, isShown = () => true) {
    const deadline = Date.now() + SETTLE_TIMEOUT;
    let calm = 0;
    while (calm < 2) {
        const dialog = document.querySelector(".o_error_dialog");
        if (failedRequest) {
            throw new Error(`${what}: ${describeFailedRequest()}`);
        }
        if (dialog) {
            throw new Error(`${what}: error dialog:\n${dialog.innerText}`);
        }
        if (isShown() && !pendingRequests.size && !scheduledRenders()) {
            calm++;
        } else {
            calm = 0;
        }
        if (Date.now() > deadline) {
            const waiting = [...pendingRequests.values()].join(", ");
            throw new Error(
                `${what}: not settled after ${SETTLE_TIMEOUT / 1000} s (shown: ${isShown()}, ` +
                    `requests: ${waiting || "none"}, renders: ${scheduledRenders()})`
            );
        }
        await nextFrame();
    }
}

function openDialog() {
    return document.querySelector(".modal .o_dialog, .o_dialog .modal");
}

function viewSelector(step) {
    if (!step.viewType) {
        // A client action: its component replaced the previous one.
        return ".o_action_manager > .o_action";
    }
    const scope = step.dialog ? ".modal" : ".o_action_manager";
    return `${scope} .o_view_controller.o_${step.viewType}_view`;
}

async function closeDialog(env, what) {
    await env.services.action.doAction({type: "ir.actions.act_window_close"});
    await settle(`${what}, closing the dialog`, () => !openDialog());
}

/** Opens each notebook page of the form on screen. */
async function openPages(what) {
    const pages = document.querySelectorAll(
        ".o_action_manager .o_form_view .o_notebook_headers .nav-link"
    );
    for (const page of pages) {
        if (!page.classList.contains("active")) {
            page.click();
            await settle(`${what}, page "${page.innerText.trim()}"`, () =>
                page.classList.contains("active")
            );
        }
    }
}

/** Presses a navigation button of the form on screen, then comes back. */
async function pressButton(env, step, name, what) {
    const button = document.querySelector(
        `.o_action_manager .o_form_view button[name="${name}"]`
    );
    if (!button) {
        // Hidden for this record or this user: the server listed every candidate.
        browser.console.log(`${what}: button ${name} not shown`);
        return;
    }
    const action = env.services.action;
    const before = action.currentController.jsId;
    browser.console.log(`${what}: pressing ${name}`);
    button.click();
    await settle(
        `${what}, button ${name}`,
        () => Boolean(openDialog()) || action.currentController.jsId !== before
    );
    if (openDialog()) {
        await closeDialog(env, `${what}, button ${name}`);
    } else {
        await action.restore(before);
        await settle(
            `${what}, back from ${name}`,
            () =>
                action.currentController.jsId === before &&
                document.querySelector(viewSelector(step))
        );
    }
}

async function walk(env, step) {
    const what = step.label;
    current = what;
    browser.console.log(`Opening ${what}`);
    const props = {};
    if (step.resId !== undefined) {
        props.resId = step.resId || undefined;
    }
    await env.services.action.doAction(step.action, {
        clearBreadcrumbs: true,
        viewType: step.viewType || undefined,
        props,
    });
    await settle(what, () => document.querySelector(viewSelector(step)));
    if (step.viewType === "form" && !step.dialog) {
        await openPages(what);
        for (const name of step.buttons || []) {
            await pressButton(env, step, name, what);
        }
        if (!step.resId && document.querySelector(".o_action_manager .o_form_dirty")) {
            // Leaving saves a dirty record: a form that looks changed before any
            // input would create a record for a user who only looked.
            throw new Error(`${what}: the new record is dirty before any input`);
        }
    }
    if (step.dialog) {
        await closeDialog(env, what);
    }
}

export async function mangoClickEverywhere(steps, withClickbot) {
    const env = odoo.__WOWL_DEBUG__.root.env;
    rpcBus.addEventListener("RPC:REQUEST", onRequest);
    rpcBus.addEventListener("RPC:RESPONSE", onResponse);
    try {
        await settle(current);
        for (const step of steps) {
            await walk(env, step);
        }
        browser.console.log(`Opened ${steps.length} views`);
    } catch (error) {
        browser.console.error(error.message || String(error));
        return;
    } finally {
        rpcBus.removeEventListener("RPC:REQUEST", onRequest);
        rpcBus.removeEventListener("RPC:RESPONSE", onResponse);
    }
    if (withClickbot) {
        // Reports its own outcome: "clickbot test succeeded" or a console error
        // naming the menu (a failed request shows in its error dialog).
        await startClickEverywhere(undefined, false);
    } else {
        browser.console.log(WALK_SUCCEEDED);
    }
}
