"""Playback of call recordings through Odoo.

The browser only ever sees ``/mango/recording/<id>``: stored files are streamed
from the filestore, and in "link" mode the file is fetched from Mango on the
server, so no Mango URL, key or signature reaches the client. Range requests
are honoured (seeking in the <audio> player) by Odoo's streaming helper.

Every path below ``/mango/recording/`` is served here, the id parsed by hand: a
huge number would overflow PostgreSQL's integer, and a path our route did not
match would fall through to Odoo's fallback, which looks it up as an attachment
URL and fails on a NUL character with a 500.
"""

import logging
import re

from werkzeug.exceptions import Forbidden, NotFound, ServiceUnavailable

from odoo import http
from odoo.exceptions import AccessError, MissingError
from odoo.http import Stream, request

from mango_office import errors as mango_errors

_logger = logging.getLogger(__name__)

LISTENER_GROUP = "mango_telephony.group_mango_recording_listener"
_RECORD_ID = re.compile(r"[0-9]{1,10}")
_MAX_RECORD_ID = 2**31 - 1


class MangoRecordingController(http.Controller):
    @http.route(
        "/mango/recording/<path:recording_ref>",
        type="http",
        auth="user",
        methods=["GET", "HEAD"],
        readonly=True,
    )
    def mango_recording(self, recording_ref, download=False, **_kwargs):
        if not _RECORD_ID.fullmatch(recording_ref) or not (
            0 < int(recording_ref) <= _MAX_RECORD_ID
        ):
            raise NotFound()
        recording_sudo = self._mango_recording_for_listener(int(recording_ref))
        if recording_sudo.state == "stored":
            attachment = recording_sudo._mango_attachment()
            if not attachment:
                raise NotFound()
            stream = attachment._to_http_stream()
            stream.mimetype = (
                recording_sudo.mimetype or attachment.mimetype or "audio/mpeg"
            )
        elif recording_sudo.state in ("linked", "pending"):
            stream = self._mango_stream_from_mango(recording_sudo)
        else:
            raise NotFound()
        stream.public = False
        response = stream.get_response(as_attachment=bool(download))
        # Recordings are personal data: never kept by shared caches.
        response.headers["Cache-Control"] = "private, no-store"
        return response

    def _mango_recording_for_listener(self, recording_id):
        """The recording (sudo) if the current user may listen to it.

        Portal and public users never get here (``auth="user"`` plus the
        listener group); internal users also need read access to the call,
        i.e. its record rules. Existence is not revealed to the unauthorised.
        """
        env = request.env
        if not env.user.has_group(LISTENER_GROUP) or env.user.share:
            raise Forbidden()
        recording_sudo = (
            env["mango.call.recording"].sudo().browse(recording_id).exists()
        )
        if not recording_sudo:
            raise NotFound()
        try:
            recording_sudo.call_id.with_env(env).check_access("read")
        except (AccessError, MissingError) as error:
            raise Forbidden() from error
        return recording_sudo

    def _mango_stream_from_mango(self, recording_sudo):
        account = recording_sudo.call_id.account_id.sudo()
        try:
            content, content_type = account._mango_client().recording(
                recording_sudo.recording_id, action="play"
            )
        except mango_errors.MangoError as error:
            _logger.info(
                "Mango recording %s could not be fetched for playback: %s (code %s)",
                recording_sudo.id,
                type(error).__name__,
                error.code,
            )
            raise ServiceUnavailable(
                request.env._("Mango cannot provide this recording right now.")
            ) from error
        mimetype = (content_type or "").split(";")[0].strip().lower()
        if not mimetype.startswith("audio/") or mimetype in (
            "audio/mp3",
            "audio/mpeg3",
        ):
            mimetype = "audio/mpeg"
        return Stream(
            type="data",
            data=content,
            size=len(content),
            mimetype=mimetype,
            download_name=f"{recording_sudo.recording_id}.mp3",
            conditional=True,
            max_age=0,
        )
