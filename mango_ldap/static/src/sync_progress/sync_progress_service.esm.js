import {_t} from "@web/core/l10n/translation";
import {reactive} from "@odoo/owl";
import {registry} from "@web/core/registry";

// Sent by mango.ldap.sync.run._mango_send_progress (models/mango_ldap_sync_run.py).
export const PROGRESS_NOTIFICATION = "mango_ldap/progress";

// How each end state is announced; the payload fills the counts in.
const END_MESSAGES = {
    done: {
        type: "success",
        text: (payload) =>
            _t(
                "Finished: %(created)s created, %(updated)s updated, %(archived)s archived.",
                payload
            ),
    },
    partial: {
        type: "warning",
        text: (payload) =>
            _t(
                "Finished with %(errors)s errors: %(created)s created, %(updated)s updated, %(archived)s archived.",
                payload
            ),
    },
    warning: {
        type: "warning",
        text: (payload) =>
            _t(
                "Finished; extension conflicts to correct in the directory: %(warnings)s. %(created)s created, %(updated)s updated, %(archived)s archived.",
                payload
            ),
    },
    waiting: {
        type: "warning",
        text: (payload) =>
            _t("%(held)s removals wait for your confirmation on the run.", payload),
    },
    failed: {
        type: "danger",
        text: () => _t("The run stopped; open it to see why."),
    },
    cancelled: {
        type: "info",
        text: () =>
            _t("Another sync of this directory was running; this one did not start."),
    },
};

/**
 * Live progress of directory sync runs, from the bus: the latest message of
 * each run, the views watching one, and a notification when a run ends.
 */
export const mangoLdapProgressService = {
    dependencies: ["bus_service", "notification", "action", "multi_tab"],

    start(env, {bus_service: busService, notification, action, multi_tab: multiTab}) {
        const state = reactive({runs: {}});
        const watchers = new Set();

        function openRun(runId) {
            return action.doAction({
                type: "ir.actions.act_window",
                res_model: "mango.ldap.sync.run",
                res_id: runId,
                views: [[false, "form"]],
                target: "current",
            });
        }

        function notifyEnd(payload) {
            const message = END_MESSAGES[payload.state];
            // A preview is opened by the click that asked for it.
            if (!message || payload.dry_run) {
                return;
            }
            const close = notification.add(message.text(payload), {
                title: _t("Directory sync: %s", payload.directory_name || ""),
                type: message.type,
                sticky: message.type !== "success",
                buttons: [
                    {
                        name: _t("Open the run"),
                        primary: true,
                        onClick: () => {
                            close();
                            openRun(payload.run_id);
                        },
                    },
                ],
            });
        }

        function receive(payload) {
            if (!payload || !payload.run_id) {
                return;
            }
            state.runs[payload.run_id] = payload;
            const watching = [...watchers].filter((watcher) =>
                watcher.matches(payload)
            );
            if (!payload.final) {
                return;
            }
            for (const watcher of watching) {
                watcher.onEnd(payload);
            }
            // Once per browser, unless this tab shows the run or its directory.
            if (watching.length || multiTab.isOnMainTab()) {
                notifyEnd(payload);
            }
        }

        // Only administrators are sent these (the server picks the recipients).
        busService.subscribe(PROGRESS_NOTIFICATION, receive);
        busService.start();

        return {
            state,
            receive,
            /**
             * @param {{matches: Function, onEnd: Function}} watcher
             * @returns {Function} stops watching
             */
            watch(watcher) {
                watchers.add(watcher);
                return () => watchers.delete(watcher);
            },
        };
    },
};

registry.category("services").add("mango_ldap_progress", mangoLdapProgressService);
