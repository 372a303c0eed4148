import {Component, onWillStart, onWillUnmount, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {registry} from "@web/core/registry";
import {standardWidgetProps} from "@web/views/widgets/standard_widget_props";
import {useService} from "@web/core/utils/hooks";

const RUN_FIELDS = [
    "state",
    "dry_run",
    "progress_done",
    "progress_total",
    "entries_seen",
    "created_count",
    "updated_count",
    "archived_count",
    "held_count",
    "pbx_count",
    "error_count",
    "warning_count",
];
const ACTIVE_STATES = ["queued", "running"];

/** A run record read from the server, in the shape of a bus message. */
function payloadOfRun(run, directoryId) {
    return {
        run_id: run.id,
        directory_id: directoryId,
        state: run.state,
        dry_run: run.dry_run,
        done: run.progress_done,
        total: run.progress_total,
        entries_seen: run.entries_seen,
        created: run.created_count,
        updated: run.updated_count,
        archived: run.archived_count,
        held: run.held_count,
        pbx: run.pbx_count,
        errors: run.error_count,
        warnings: run.warning_count,
        final: !ACTIVE_STATES.includes(run.state),
    };
}

/**
 * Progress of the running sync on a run's form or its directory's form, kept
 * current by the "mango_ldap/progress" bus messages (no polling). When the run
 * ends the record reloads, so counts and lines show the result.
 */
export class MangoLdapSyncProgress extends Component {
    static template = "mango_ldap.SyncProgress";
    static props = {...standardWidgetProps};

    setup() {
        this.progress = useService("mango_ldap_progress");
        this.orm = useService("orm");
        this.live = useState(this.progress.state);
        this.initial = useState({payload: null});
        onWillStart(() => this.loadInitial());
        const stop = this.progress.watch({
            matches: (payload) => this.matches(payload),
            onEnd: () => this.reload(),
        });
        onWillUnmount(stop);
    }

    get isRun() {
        return this.props.record.resModel === "mango.ldap.sync.run";
    }

    matches(payload) {
        const id = this.props.record.resId;
        if (!id) {
            return false;
        }
        return this.isRun ? payload.run_id === id : payload.directory_id === id;
    }

    async loadInitial() {
        const id = this.props.record.resId;
        if (!id) {
            return;
        }
        const domain = this.isRun
            ? [["id", "=", id]]
            : [
                  ["directory_id", "=", id],
                  ["state", "in", ACTIVE_STATES],
              ];
        const runs = await this.orm.searchRead(
            "mango.ldap.sync.run",
            domain,
            RUN_FIELDS.concat(["directory_id"]),
            {limit: 1, order: "id desc"}
        );
        if (runs.length) {
            const directoryId = this.isRun ? runs[0].directory_id[0] : id;
            this.initial.payload = payloadOfRun(runs[0], directoryId);
        }
    }

    get payload() {
        // Read through this component's own reactive view of the service state,
        // so each bus message re-renders it.
        const live =
            Object.values(this.live.runs)
                .filter((payload) => this.matches(payload))
                .sort((a, b) => b.run_id - a.run_id)[0] || null;
        const initial = this.initial.payload;
        if (live && (!initial || live.run_id >= initial.run_id)) {
            return live;
        }
        return initial;
    }

    /** Shown while a run goes, and for the run that just ended here. */
    get visible() {
        const payload = this.payload;
        return Boolean(
            payload &&
                (ACTIVE_STATES.includes(payload.state) ||
                    (this.live.runs[payload.run_id] && payload.final))
        );
    }

    get percent() {
        const {done, total} = this.payload;
        return total ? Math.min(100, Math.round((100 * done) / total)) : 0;
    }

    get headline() {
        const payload = this.payload;
        if (payload.state === "queued") {
            return _t("Waiting for the sync worker…");
        }
        if (payload.final) {
            return _t("The run has ended.");
        }
        return payload.total
            ? _t("Applying the directory…")
            : _t("Reading the directory…");
    }

    get counter() {
        const payload = this.payload;
        if (payload.total) {
            return _t("%(done)s of %(total)s changes", {
                done: payload.done,
                total: payload.total,
            });
        }
        return _t("%s entries read", payload.entries_seen || 0);
    }

    async reload() {
        const record = this.props.record;
        // Never throw away what the administrator is typing on the directory.
        if (record.dirty) {
            return;
        }
        await record.model.root.load();
    }
}

registry.category("view_widgets").add("mango_ldap_sync_progress", {
    component: MangoLdapSyncProgress,
});
