"""Call recordings: which recordings a call has, fetching them from Mango,
keeping them (or only a link), the retention that deletes old files, and who may
listen.

Mango announces a recording in the call's events; the fold schedules one
``mango.call.recording`` per recording saved in Mango's cloud, and a cron fetches
it (Mango may answer "not found" for a while, and locks the API on a second such
answer within two minutes: probes are spaced per account). The account chooses
to store the file in Odoo or to play it from Mango on demand, and how many days
stored files are kept. Playback always goes through our own controller, to users
of the recording listener group only.
"""

import logging
import time
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models

from mango_office.errors import (
    MangoAuthError,
    MangoDeferred,
    MangoError,
    MangoLockedOut,
    MangoRequestError,
)
from mango_office.retry import Backoff

from ..compat import cron
from ..compat.constraints import table_constraints

_logger = logging.getLogger(__name__)

# Mango may answer "not found" for a while after the call (reference §4.1):
# it asks to retry about once a minute.
RETRY_INTERVAL = timedelta(minutes=1)
RETRY_WINDOW = timedelta(hours=1)
BACKOFF = Backoff(first=RETRY_INTERVAL, factor=1, window=RETRY_WINDOW)
# A rejected key or a lockout (§1.4) will not heal in a minute, and every
# further refused request prolongs the lockout.
AUTH_RETRY_INTERVAL = timedelta(minutes=5)
# "Not found yet" is result 3320, a 3xxx: Mango allows one such answer per two
# minutes and locks the whole API (click-to-call included) on the second
# (reference §1.4). Probes of an account are therefore spaced by a little more,
# whatever the one-minute cadence Mango suggests for recordings.
NOT_READY_SPACING_SECONDS = 125
FETCH_BATCH = 50
MP3_MIMETYPE = "audio/mpeg"


@table_constraints
class MangoCallRecording(models.Model):
    _name = "mango.call.recording"
    _inherit = ["mango.retry.mixin"]
    _description = "Call recording"
    _order = "id desc"
    _rec_name = "display_label"

    call_id = fields.Many2one(
        "mango.call", required=True, ondelete="cascade", index=True
    )
    account_id = fields.Many2one(
        related="call_id.account_id", store=True, string="Account"
    )
    company_id = fields.Many2one(
        related="call_id.company_id", store=True, string="Company"
    )
    recording_id = fields.Char(
        string="Mango recording ID", required=True, readonly=True
    )
    extension = fields.Char(string="Recorded extension", readonly=True)
    state = fields.Selection(
        [
            ("pending", "Waiting for Mango"),
            ("stored", "Stored in Odoo"),
            ("linked", "Kept at Mango"),
            ("failed", "Failed"),
            ("purged", "Removed (retention)"),
        ],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    first_attempt_at = fields.Datetime(readonly=True)
    # A binary field rather than a bare attachment of the call: Odoo lets anyone
    # who reads a record download its plain attachments (/web/content), while a
    # field attachment also requires the field's groups — the listener right.
    audio = fields.Binary(
        attachment=True,
        groups="mango_telephony.group_mango_recording_listener",
        copy=False,
    )
    file_size = fields.Integer(string="Size (bytes)", readonly=True)
    mimetype = fields.Char(readonly=True)
    fetched_at = fields.Datetime(readonly=True)
    purged_at = fields.Datetime(readonly=True)
    playback_url = fields.Char(compute="_compute_playback_url")
    player_html = fields.Html(
        string="Player", compute="_compute_player_html", sanitize=False
    )
    display_label = fields.Char(compute="_compute_display_label")

    _sql_constraints = [
        (
            "recording_call_unique",
            "unique(call_id, recording_id)",
            "A Mango recording is stored once per call.",
        ),
    ]

    def _compute_playback_url(self):
        for recording in self:
            recording.playback_url = (
                f"/mango/recording/{recording.id}" if recording.id else False
            )

    @api.depends("state")
    @api.depends_context("uid")
    def _compute_player_html(self):
        may_listen = self.env.user.has_group(
            "mango_telephony.group_mango_recording_listener"
        )
        for recording in self:
            recording.player_html = recording._mango_player_markup(may_listen)

    def _mango_player_markup(self, may_listen):
        """An HTML5 player pointing at our own controller, never at Mango."""
        self.ensure_one()
        if not may_listen:
            return Markup('<span class="text-muted">%s</span>') % self.env._(
                "You are not allowed to listen to recordings."
            )
        if self.state not in ("stored", "linked") or not self.id:
            label = dict(self._fields["state"]._description_selection(self.env)).get(
                self.state, ""
            )
            return Markup('<span class="text-muted">%s</span>') % label
        return Markup(
            '<audio controls="controls" preload="none" '
            'class="o_mango_recording_player" src="/mango/recording/%s"></audio>'
        ) % int(self.id)

    @api.depends("recording_id", "call_id")
    def _compute_display_label(self):
        for recording in self:
            recording.display_label = self.env._(
                "Recording %(number)s of %(call)s",
                number=recording.id or "",
                call=recording.call_id.display_name or "",
            )

    # ------------------------------------------------------------------
    # Scheduling
    # ------------------------------------------------------------------

    @api.model
    def _mango_schedule(self, call, recording_id, extension=None, announced=True):
        """Make sure ``recording_id`` of ``call`` will be fetched; idempotent.

        :param bool announced: Mango said the file is stored (record/added);
            otherwise (a Completed recording only) the first try waits a
            minute, as a "not found yet" answer costs Mango's 3xxx allowance.
        :return: the mango.call.recording record
        """
        now = fields.Datetime.now()
        due = now if announced else now + RETRY_INTERVAL
        recording = self.search(
            [("call_id", "=", call.id), ("recording_id", "=", recording_id)], limit=1
        )
        if recording:
            values = {}
            if extension and not recording.extension:
                values["extension"] = extension
            if (
                announced
                and recording.state == "pending"
                and not recording.attempts
                and recording.next_attempt_at
                and recording.next_attempt_at > due
            ):
                values["next_attempt_at"] = due
            if values:
                recording.write(values)
            return recording
        recording = self.create(
            {
                "call_id": call.id,
                "recording_id": recording_id,
                "extension": extension or False,
                "next_attempt_at": due,
            }
        )
        cron = self.env.ref(
            "mango_telephony.ir_cron_mango_recording_fetch", raise_if_not_found=False
        )
        if cron:
            # ir.cron._trigger() would open a connection to the postgres
            # database per recording to wake the workers; the event worker
            # schedules recordings for many calls in one transaction and wakes
            # the workers once, when it commits.
            self.env["ir.cron.trigger"].sudo().create(
                {"cron_id": cron.id, "call_at": due}
            )
            if due <= now:
                self.env["mango.event"]._mango_wake_after_commit()
        return recording

    @api.model
    def _cron_fetch_due(self):
        due = self.search(
            [
                ("state", "=", "pending"),
                ("next_attempt_at", "<=", fields.Datetime.now()),
            ],
            order="next_attempt_at, id",
            limit=FETCH_BATCH,
        )
        due._mango_fetch()
        remaining = self.search_count(
            [
                ("state", "=", "pending"),
                ("next_attempt_at", "<=", fields.Datetime.now()),
            ]
        )
        cron.report_progress(self.env, done=len(due), remaining=remaining)

    def _mango_fetch(self):
        """Try once to bring each pending recording in; failures are rescheduled."""
        blocked_until = {}
        for recording in self.filtered(lambda r: r.state == "pending"):
            account = recording.call_id.account_id
            now = fields.Datetime.now()
            wait = max(
                blocked_until.get(account.id, 0.0),
                (account.recording_probe_after or 0.0) - time.time(),
            )
            if wait > 0:
                # Not an attempt: nothing was asked, so nothing is counted.
                recording.next_attempt_at = now + timedelta(seconds=wait)
                continue
            values = {"attempts": recording.attempts + 1, "last_error": False}
            if not recording.first_attempt_at:
                values["first_attempt_at"] = now
            if account.recording_mode == "link":
                # Nothing is copied: playback asks Mango for the file each time.
                values.update(state="linked", fetched_at=now, next_attempt_at=False)
                recording.write(values)
                continue
            try:
                content, content_type = account._mango_client().recording(
                    recording.recording_id, action="download"
                )
                if not content:
                    raise MangoError(self.env._("Mango returned an empty recording."))
            except MangoDeferred as error:
                # The client held the request back (a 3xxx moments ago in this
                # process): nothing was asked, so nothing is counted.
                delay = max(getattr(error, "retry_after", None) or 0, 1.0)
                blocked_until[account.id] = delay
                recording.next_attempt_at = now + timedelta(seconds=delay)
                continue
            except (MangoAuthError, MangoLockedOut) as error:
                delay = AUTH_RETRY_INTERVAL.total_seconds()
                if isinstance(error, MangoLockedOut):
                    delay = max(getattr(error, "retry_after", None) or 0, delay)
                blocked_until[account.id] = delay
                values.update(
                    last_error=self._mango_error_text(error),
                    next_attempt_at=now + timedelta(seconds=delay),
                )
                recording._mango_reschedule(values, now)
                continue
            except MangoRequestError as error:
                # 3320 and kin: spend no second 3xxx of this account for a while.
                account.sudo().recording_probe_after = (
                    time.time() + NOT_READY_SPACING_SECONDS
                )
                blocked_until[account.id] = NOT_READY_SPACING_SECONDS
                values.update(
                    last_error=self._mango_error_text(error),
                    next_attempt_at=now + timedelta(seconds=NOT_READY_SPACING_SECONDS),
                )
                recording._mango_reschedule(values, now)
                continue
            except MangoError as error:
                values.update(
                    last_error=self._mango_error_text(error),
                    next_attempt_at=now + BACKOFF.delay(values["attempts"]),
                )
                recording._mango_reschedule(values, now)
                continue
            mimetype = (content_type or "").split(";")[0].strip().lower()
            if not mimetype.startswith("audio/") or mimetype in (
                "audio/mp3",
                "audio/mpeg3",
            ):
                mimetype = MP3_MIMETYPE
            recording._mango_store(content, mimetype)
            values.update(
                state="stored",
                fetched_at=now,
                next_attempt_at=False,
                file_size=len(content),
                mimetype=mimetype,
            )
            recording.write(values)

    def _mango_reschedule(self, values, now):
        self.ensure_one()
        started = values.get("first_attempt_at") or self.first_attempt_at or now
        if BACKOFF.exhausted(values["attempts"], started, values["next_attempt_at"]):
            values.update(state="failed", next_attempt_at=False)
            _logger.warning(
                "Mango recording %s of call %s given up after %s attempts: %s",
                self.id,
                self.call_id.id,
                values["attempts"],
                values["last_error"],
            )
        self.write(values)

    @api.model
    def _mango_error_text(self, error):
        code = getattr(error, "code", None)
        text = str(error) or error.__class__.__name__
        if code and str(code) not in text:
            text = f"{code}: {text}"
        return text[:500]

    def _mango_store(self, content, mimetype):
        self.ensure_one()
        attachments = self.env["ir.attachment"].sudo()
        attachments.search(
            [
                ("res_model", "=", self._name),
                ("res_id", "=", self.id),
                ("res_field", "=", "audio"),
            ]
        ).unlink()
        name = f"{self.call_id.entry_id or self.call_id.id}-{self.recording_id}.mp3"
        attachments.create(
            {
                "name": name[:200],
                "res_model": self._name,
                "res_id": self.id,
                "res_field": "audio",
                "raw": content,
                "mimetype": mimetype,
            }
        )
        self.invalidate_recordset(["audio"])

    def _mango_attachment(self):
        self.ensure_one()
        return (
            self.env["ir.attachment"]
            .sudo()
            .search(
                [
                    ("res_model", "=", self._name),
                    ("res_id", "=", self.id),
                    ("res_field", "=", "audio"),
                ],
                limit=1,
            )
        )

    # ------------------------------------------------------------------
    # Retention
    # ------------------------------------------------------------------

    @api.model
    def _cron_purge_expired(self):
        accounts = (
            self.env["mango.account"]
            .with_context(active_test=False)
            .search([("recording_retention_days", ">", 0)])
        )
        for account in accounts:
            limit = fields.Datetime.now() - timedelta(
                days=account.recording_retention_days
            )
            expired = self.search(
                [
                    ("call_id.account_id", "=", account.id),
                    ("state", "=", "stored"),
                    ("fetched_at", "<", limit),
                ]
            )
            expired._mango_purge()

    def _mango_purge(self):
        for recording in self:
            recording._mango_attachment().unlink()
            recording.write({"state": "purged", "purged_at": fields.Datetime.now()})
        self.invalidate_recordset(["audio"])

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_mango_retry(self):
        for recording in self.filtered(lambda r: r.state in ("failed", "pending")):
            recording.write(
                dict(
                    self._mango_retry_reset_values(fields.Datetime.now()),
                    state="pending",
                    first_attempt_at=False,
                )
            )
        self._mango_fetch()
        return True


class MangoAccount(models.Model):
    _inherit = "mango.account"

    recording_links_allowed = fields.Boolean(
        string="Recording links enabled in Mango",
        tracking=True,
        help="Tick when 'Call recordings' is enabled among the additional API "
        "parameters of Mango's API connector: recordings can then be played "
        "through signed temporary links instead of being downloaded first.",
    )
    recording_storage = fields.Selection(
        [
            ("cloud", "Cloud only"),
            ("cloud_email", "Cloud and e-mail"),
        ],
        string="Recording storage",
        required=True,
        default="cloud",
        tracking=True,
        help="Where Mango keeps recordings, as set in Mango's cabinet. With "
        "e-mail, Mango also mails each recording and reports that copy as a "
        "separate recording event.",
    )
    recording_mode = fields.Selection(
        [
            ("file", "Store the files in Odoo"),
            ("link", "Keep them at Mango, play on demand"),
        ],
        string="Recordings",
        required=True,
        default="file",
        help="Store: each recording is downloaded once and kept as an attachment. "
        "Keep at Mango: Odoo only remembers the recording and fetches it from "
        "Mango each time someone plays it (recordings deleted in Mango then "
        "cannot be played).",
    )
    recording_retention_days = fields.Integer(
        string="Keep recordings (days)",
        default=0,
        help="Stored recording files older than this are deleted (the call and "
        "the recording entry stay). 0 keeps them forever.",
    )
    recording_probe_after = fields.Float(
        string="Next recording probe allowed at",
        readonly=True,
        copy=False,
        help="Epoch time before which no recording is asked for again after Mango "
        "answered 'not found yet' (a 3xxx answer, of which Mango allows one per two "
        "minutes).",
    )


class MangoCall(models.Model):
    _inherit = "mango.call"

    recording_ids = fields.One2many(
        "mango.call.recording", "call_id", string="Recordings"
    )
    recording_count = fields.Integer(compute="_compute_recording_count")
    recording_player_html = fields.Html(
        string="Recording", compute="_compute_recording_player_html", sanitize=False
    )

    @api.depends("recording_ids")
    def _compute_recording_count(self):
        for call in self:
            call.recording_count = len(call.recording_ids)

    @api.depends("recording_ids.state")
    @api.depends_context("uid")
    def _compute_recording_player_html(self):
        may_listen = self.env.user.has_group(
            "mango_telephony.group_mango_recording_listener"
        )
        for call in self:
            recordings = call.sudo().recording_ids.sorted("id")
            call.recording_player_html = (
                Markup("").join(
                    Markup('<div class="mb-1">%s</div>')
                    % rec._mango_player_markup(may_listen)
                    for rec in recordings
                )
                if recordings
                else False
            )

    def _mango_step_schedule_recordings(self, previous):
        for call in self:
            call._mango_schedule_recordings()

    def _mango_schedule_recordings(self):
        self.ensure_one()
        recordings = (self.fold_state or {}).get("recordings") or {}
        Recording = self.env["mango.call.recording"].sudo()
        for recording_id, info in recordings.items():
            # "saved": announced by record/added, or Completed into the cloud
            # (Cloud / CloudAndMail, completion 1000); Mail-only copies and failed
            # recordings (4002 too short …) cannot be fetched.
            if info.get("saved"):
                Recording._mango_schedule(
                    self,
                    recording_id,
                    info.get("extension"),
                    announced=bool(info.get("added")),
                )

    def action_mango_open_recordings(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Recordings"),
            "res_model": "mango.call.recording",
            "view_mode": "list,form",
            "domain": [("call_id", "=", self.id)],
            "context": {"create": False},
        }
