import logging
import random
from collections import Counter
from datetime import timedelta

from odoo import Command, fields
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from .common import MangoHttpCase
from .followup_common import MangoFollowupCase


@tagged("post_install", "-at_install")
class TestRecordingFetch(MangoFollowupCase):
    def _two_minutes_later(self):
        """Mango's 3xxx window (and ours, kept in the database) has passed."""
        self.mango_sim.advance(126)
        self.mango_account.recording_probe_after = 0
        self.mango_forget_rate_limits()

    def _answered_call_with_recording(self, **options):
        call = self.mango_run("incoming_answered", **options)
        self.assertEqual(len(call.recording_ids), 1, "record/added schedules a fetch")
        return call, call.recording_ids

    def test_recording_is_downloaded_and_kept_as_audio_attachment(self):
        call, recording = self._answered_call_with_recording()
        self.assertEqual(recording.state, "pending")
        self.env["mango.call.recording"]._cron_fetch_due()
        self.assertEqual(recording.state, "stored")
        self.assertEqual(recording.attempts, 1)
        attachment = recording._mango_attachment()
        self.assertEqual(attachment.mimetype, "audio/mpeg")
        self.assertEqual(attachment.res_model, "mango.call.recording")
        self.assertEqual(attachment.res_field, "audio")
        self.assertGreater(recording.file_size, 100)
        self.assertEqual(attachment.file_size, recording.file_size)
        downloads = self.mango_sim.commands("queries/recording/post")
        self.assertEqual(len(downloads), 1)
        # Re-delivering the events schedules nothing new.
        self.mango_ingest(self.mango_play("incoming_answered"))
        self.mango_process_all()
        self.assertEqual(len(call.recording_ids), 1)

    @mute_logger("mango_office.client")
    def test_recording_not_ready_is_retried_every_minute(self):
        _call, recording = self._answered_call_with_recording()
        self.mango_sim.add_fault("recording_not_ready", count=3)
        Recording = self.env["mango.call.recording"]
        for attempt in (1, 2, 3):
            Recording._cron_fetch_due()
            self.assertEqual(recording.state, "pending")
            self.assertEqual(recording.attempts, attempt)
            self.assertIn("3320", recording.last_error)
            # 3320 is a 3xxx: the next probe waits past Mango's 2-minute window.
            delay = recording.next_attempt_at - fields.Datetime.now()
            self.assertGreater(delay, timedelta(minutes=2))
            self.assertLess(delay, timedelta(minutes=3))
            # Not due yet: the cron leaves it alone.
            Recording._cron_fetch_due()
            self.assertEqual(recording.attempts, attempt)
            # Even when due, the probe spacing holds it back (not an attempt).
            recording.next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)
            recording._mango_fetch()
            self.assertEqual(recording.attempts, attempt)
            self.assertGreater(recording.next_attempt_at, fields.Datetime.now())
            self._two_minutes_later()
            recording.next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)
        Recording._cron_fetch_due()
        self.assertEqual(recording.state, "stored")
        self.assertEqual(recording.attempts, 4)
        self.assertFalse(recording.last_error)

    @mute_logger(
        "mango_office.client", "odoo.addons.mango_telephony.models.mango_call_recording"
    )
    def test_recording_given_up_after_an_hour(self):
        _call, recording = self._answered_call_with_recording()
        self.mango_sim.add_fault("recording_not_ready", count=1000)
        recording._mango_fetch()
        self.assertEqual(recording.state, "pending")
        self.assertEqual(recording.attempts, 1)
        self._two_minutes_later()
        recording.write(
            {
                "first_attempt_at": fields.Datetime.now() - timedelta(minutes=59),
                "next_attempt_at": fields.Datetime.now(),
            }
        )
        recording._mango_fetch()
        self.assertEqual(recording.state, "failed")
        self.assertFalse(recording.next_attempt_at)
        self.assertIn("3320", recording.last_error)
        self.assertFalse(
            self.mango_sim.commands("queries/recording/post")[-1]["http_status"] == 401,
            "never locked out",
        )
        self._two_minutes_later()
        recording.action_mango_retry()
        self.assertEqual(recording.state, "pending", "still not ready: pending again")
        self.assertEqual(recording.attempts, 1)

    def test_server_errors_are_retried_too(self):
        _call, recording = self._answered_call_with_recording()
        self.mango_sim.add_fault(
            "http_503", count=10, methods=["queries/recording/post"]
        )
        recording._mango_fetch()
        self.assertEqual(recording.state, "pending")
        self.assertTrue(recording.last_error)

    def test_completed_without_record_added_waits_a_minute(self):
        events = [
            (path, payload)
            for path, payload in self.mango_play("incoming_answered")
            if path != "events/record/added"
        ]
        self.mango_ingest(events)
        self.mango_process_all()
        entry_id = events[0][1]["entry_id"]
        recording = self.mango_call(entry_id).recording_ids
        self.assertEqual(len(recording), 1, "Completed into the cloud is enough")
        self.assertGreater(recording.next_attempt_at, fields.Datetime.now())
        self.env["mango.call.recording"]._cron_fetch_due()
        self.assertEqual(recording.attempts, 0)

    def test_mail_only_and_failed_recordings_are_not_fetched(self):
        call = self.mango_run("incoming_answered", talk_seconds=1)
        # 1 s is too short (4002): Mango keeps nothing and says no record/added.
        self.assertFalse(call.recording_ids)

    def test_link_mode_keeps_no_file(self):
        self.mango_account.recording_mode = "link"
        _call, recording = self._answered_call_with_recording()
        recording._mango_fetch()
        self.assertEqual(recording.state, "linked")
        self.assertFalse(recording._mango_attachment())
        self.assertFalse(self.mango_sim.commands("queries/recording/post"))

    def test_retention_removes_files_but_keeps_the_row(self):
        self.mango_account.recording_retention_days = 30
        _call, recording = self._answered_call_with_recording()
        recording._mango_fetch()
        attachment = recording._mango_attachment()
        Recording = self.env["mango.call.recording"]
        Recording._cron_purge_expired()
        self.assertEqual(recording.state, "stored", "fresh files stay")
        recording.fetched_at = fields.Datetime.now() - timedelta(days=31)
        Recording._cron_purge_expired()
        self.assertEqual(recording.state, "purged")
        self.assertTrue(recording.purged_at)
        self.assertFalse(attachment.exists())
        self.assertTrue(recording.exists())

    def test_retention_zero_keeps_forever(self):
        _call, recording = self._answered_call_with_recording()
        recording._mango_fetch()
        recording.fetched_at = fields.Datetime.now() - timedelta(days=3650)
        self.env["mango.call.recording"]._cron_purge_expired()
        self.assertEqual(recording.state, "stored")


@tagged("post_install", "-at_install")
class TestRecordingPlayback(MangoFollowupCase, MangoHttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users = cls.env["res.users"].with_context(no_reset_password=True)
        supervisor = cls.env.ref("mango_telephony.group_mango_supervisor")
        listener = cls.env.ref("mango_telephony.group_mango_recording_listener")
        cls.listener_user = Users.create(
            {
                "name": "Listener",
                "login": "listener",
                "password": "listener-pass-1234",
                USER_GROUPS: [Command.link(supervisor.id), Command.link(listener.id)],
            }
        )
        cls.deaf_user = Users.create(
            {
                "name": "Supervisor without recordings",
                "login": "deaf",
                "password": "deaf-pass-1234",
                USER_GROUPS: [Command.link(supervisor.id)],
            }
        )
        cls.outsider = Users.create(
            {
                "name": "Listener who may not see the call",
                "login": "outsider",
                "password": "outsider-pass-1234",
                USER_GROUPS: [
                    Command.link(cls.env.ref("mango_telephony.group_mango_user").id),
                    Command.link(listener.id),
                ],
            }
        )
        cls.portal_user = Users.create(
            {
                "name": "Portal",
                "login": "portal-mango",
                "password": "portal-pass-1234",
                USER_GROUPS: [Command.set([cls.env.ref("base.group_portal").id])],
            }
        )

    def _stored_recording(self):
        call = self.mango_run("incoming_answered")
        recording = call.recording_ids
        recording._mango_fetch()
        self.assertEqual(recording.state, "stored")
        return recording

    def test_listener_plays_with_ranges(self):
        recording = self._stored_recording()
        self.authenticate("listener", "listener-pass-1234")
        url = f"/mango/recording/{recording.id}"
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "audio/mpeg")
        self.assertEqual(len(response.content), recording.file_size)
        self.assertIn("no-store", response.headers["Cache-Control"])
        partial = self.url_open(url, headers={"Range": "bytes=0-99"})
        self.assertEqual(partial.status_code, 206)
        self.assertEqual(partial.content, response.content[:100])

    def test_form_player_points_to_odoo_only(self):
        recording = self._stored_recording()
        html = str(
            recording.call_id.with_user(self.listener_user).recording_player_html
        )
        self.assertIn(f'src="/mango/recording/{recording.id}"', html)
        self.assertNotIn(self.mango_sim.origin, html)
        deaf = str(recording.call_id.with_user(self.deaf_user).recording_player_html)
        self.assertNotIn("<audio", deaf)

    def test_denied_without_listener_group(self):
        recording = self._stored_recording()
        self.authenticate("deaf", "deaf-pass-1234")
        response = self.url_open(f"/mango/recording/{recording.id}")
        self.assertEqual(response.status_code, 403)
        # Nor through Odoo's generic attachment download.
        attachment = recording._mango_attachment()
        generic = self.url_open(f"/web/content/{attachment.id}")
        self.assertIn(generic.status_code, (403, 404))
        self.assertNotEqual(generic.content[:3], b"ID3")

    def test_denied_without_access_to_the_call(self):
        recording = self._stored_recording()
        self.authenticate("outsider", "outsider-pass-1234")
        response = self.url_open(f"/mango/recording/{recording.id}")
        self.assertEqual(response.status_code, 403)

    def test_denied_for_portal_and_public(self):
        recording = self._stored_recording()
        self.authenticate("portal-mango", "portal-pass-1234")
        response = self.url_open(f"/mango/recording/{recording.id}")
        self.assertEqual(response.status_code, 403)
        self.authenticate(None, None)
        response = self.url_open(
            f"/mango/recording/{recording.id}", allow_redirects=False
        )
        self.assertIn(response.status_code, (302, 303))
        self.assertIn("/web/login", response.headers.get("Location", ""))

    def test_link_mode_streams_through_odoo(self):
        self.mango_account.recording_mode = "link"
        call = self.mango_run("incoming_answered")
        recording = call.recording_ids
        recording._mango_fetch()
        self.assertEqual(recording.state, "linked")
        self.authenticate("listener", "listener-pass-1234")
        response = self.url_open(f"/mango/recording/{recording.id}")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "audio/mpeg")
        self.assertGreater(len(response.content), 100)
        exposed = str(response.headers) + response.content[:4096].decode("latin-1")
        self.assertNotIn(self.mango_api_key, exposed)
        self.assertNotIn(self.mango_sim.origin, exposed)
        self.assertNotIn("/files/", str(response.headers))
        # Mango was asked server-side, with the signed POST.
        self.assertEqual(len(self.mango_sim.commands("queries/recording/post")), 1)

    def test_missing_recording_is_not_found(self):
        self.authenticate("listener", "listener-pass-1234")
        response = self.url_open("/mango/recording/999999999")
        self.assertEqual(response.status_code, 404)

    def test_hostile_requests_never_fail(self):
        """Hostile requests at the playback route, as a listener, as an internal
        user without the right and as the public: never a 5xx, a traceback or an
        ERROR line, and the audio only to the listener."""
        recording = self._stored_recording()
        rng = random.Random(20260514)
        ids = [
            str(recording.id),
            f"000{recording.id}",
            "0",
            "-1",
            "1.5",
            "1e3",
            "abc",
            "%00",
            "%ED%A0%80",
            "١٢",
            "9" * 30,
            str(2**31),
            str(2**63),
            "999999999",
            f"{recording.id}%00",
            f"{recording.id}/extra",
        ]
        params = [
            "",
            "?download=1",
            "?download=%00",
            "?download=" + "x" * 5000,
            "?download=%ED%A0%80",
            "?download=1&download=0",
            "?unknown=%00%01%02",
            "?" + "&".join(f"p{i}=1" for i in range(300)),
        ]
        ranges = [
            None,
            "bytes=0-99",
            "bytes=99999999999999999999-",
            "bytes=-0",
            "bytes=abc",
            "bytes=5-1",
            "x" * 2000,
            "bytes=0-1,2-3,4-5,6-7,8-9,10-11,12-13,14-15,16-17",
        ]
        users = [
            ("listener", "listener-pass-1234"),
            ("deaf", "deaf-pass-1234"),
            (None, None),
        ]
        errors = []
        statuses = Counter()
        with self.assertNoLogs(level=logging.ERROR):
            for login, password in users:
                self.authenticate(login, password)
                for _attempt in range(250):
                    url = f"/mango/recording/{rng.choice(ids)}{rng.choice(params)}"
                    headers = {}
                    range_header = rng.choice(ranges)
                    if range_header:
                        headers["Range"] = range_header
                    method = rng.choice(["GET", "GET", "HEAD", "POST"])
                    response = self.opener.request(
                        method,
                        self.base_url() + url,
                        headers=headers,
                        timeout=30,
                        allow_redirects=False,
                    )
                    statuses[response.status_code] += 1
                    if response.status_code >= 500 or b"Traceback" in response.content:
                        errors.append(f"{response.status_code} {method} {url[:80]}")
                    if login != "listener" and response.status_code in (200, 206):
                        errors.append(f"{login} got the audio: {url[:80]}")
        self.assertFalse(errors, f"{dict(statuses)}\n" + "\n".join(errors[:20]))
        self.assertIn(200, statuses)
