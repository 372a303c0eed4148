"""The website widget's public routes: anyone on the Internet may post anything.

Every value is checked before it reaches the database or a library: the widget id
is a record id of the database's integer range, the CSRF token has the shape Odoo
issues before Odoo compares it (its comparison raises on non-ASCII text), and
form values that are not text (a file) or hold characters no one types (NUL,
control characters, ``mango_office.safe_text``) are refused field by field.
Garbage is answered like any refused request, in JSON, and only a refusal is
stored (its text made safe); a visitor never sees a traceback.
"""

import datetime as dt
import logging
import re

from odoo import _, fields, http
from odoo.http import request

from mango_office import safe_text

_logger = logging.getLogger(__name__)

# Record ids are PostgreSQL integers; anything else is not a widget of ours.
_WIDGET_ID = re.compile(r"[1-9][0-9]{0,9}")
_MAX_RECORD_ID = 2**31 - 1
# What Odoo's request.csrf_token() issues: an HMAC-SHA1 in hex, "o", a timestamp.
_CSRF_TOKEN = re.compile(r"[0-9a-f]{40}o[0-9]{0,20}")
FORM_FIELDS = ("phone", "country", "name", "consent", "slot", "company_website")


class MangoCallbackController(http.Controller):
    def _widget(self, widget_id):
        if (
            not isinstance(widget_id, str)
            or not _WIDGET_ID.fullmatch(widget_id)
            or int(widget_id) > _MAX_RECORD_ID
        ):
            return None
        widget = (
            request.env["mango.callback.widget"].sudo().browse(int(widget_id)).exists()
        )
        if not widget or widget.website_id != request.website:
            return None
        return widget

    @staticmethod
    def _csrf_valid(token):
        return (
            isinstance(token, str)
            and _CSRF_TOKEN.fullmatch(token) is not None
            and request.validate_csrf(token)
        )

    def _form_values(self, params):
        """The visitor's fields as text; ``unreadable`` lists those that are not
        text at all (a file) or carry characters nobody types."""
        raw = {name: params.get(name) for name in FORM_FIELDS}
        unreadable = [
            name
            for name, value in raw.items()
            if value is not None
            and (not isinstance(value, str) or safe_text.problem(value))
        ]
        text = {name: v if isinstance(v, str) else "" for name, v in raw.items()}
        return {
            "phone": text["phone"].strip(),
            "country": text["country"].strip().upper() or None,
            "name": text["name"],
            "consent": text["consent"],
            "slot": text["slot"] or None,
            "honeypot": text["company_website"],
            "unreadable": unreadable,
        }

    def _json(self, payload, status=200):
        return request.make_json_response(payload, status=status)

    @http.route(
        "/mango_callback/request",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        website=True,
        sitemap=False,
    )
    def callback_request(self, **params):
        """Public intake of the widget; CSRF checked here so the answer stays JSON."""
        try:
            widget = self._widget(params.get("widget_id"))
            if not widget:
                return self._json(
                    {
                        "ok": False,
                        "message": _("This call-back form is not available."),
                    },
                    status=404,
                )
            values = self._form_values(params)
            if not self._csrf_valid(params.get("csrf_token")):
                message = _("Your session has expired. Reload the page and try again.")
                request.env["mango.callback.request"].sudo()._mango_refuse(
                    {
                        "widget_id": widget.id,
                        "phone": values["phone"] or "-",
                        "ip_address": request.httprequest.remote_addr,
                    },
                    "csrf",
                    message,
                )
                return self._json({"ok": False, "message": message}, status=400)
            answer = (
                request.env["mango.callback.request"]
                .sudo()
                ._mango_submit(
                    widget,
                    values,
                    request.httprequest.remote_addr,
                    user_agent=request.httprequest.user_agent.string,
                    lang=request.env.lang,
                )
            )
            return self._json(answer)
        except Exception:
            # A visitor never sees a traceback; the log keeps it for the admin.
            _logger.exception("Call-back request failed")
            request.env.cr.rollback()
            return self._json(
                {
                    "ok": False,
                    "message": _(
                        "Sorry, something went wrong. Please call us instead."
                    ),
                },
                status=500,
            )

    @http.route(
        "/mango_callback/check",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        website=True,
        sitemap=False,
    )
    def check_number(self, **params):
        """Live validation of the number as the visitor types (no record written)."""
        widget = self._widget(params.get("widget_id"))
        if not widget or not self._csrf_valid(params.get("csrf_token")):
            return self._json({"errors": {}}, status=400)
        values = self._form_values(params)
        Request = request.env["mango.callback.request"].sudo()
        error = Request._mango_form_errors(values).get("phone")
        if not error:
            _e164, error = widget._mango_check_number(
                values["phone"], values["country"]
            )
        return self._json({"errors": {"phone": error} if error else {}})

    @http.route(
        "/mango_callback/slots",
        type="http",
        auth="public",
        methods=["GET"],
        website=True,
        sitemap=False,
    )
    def slots(self, widget_id=None, **_params):
        """The coming working periods a visitor may pick, when the widget allows it."""
        widget = self._widget(widget_id)
        if not widget or not widget.allow_slot_choice:
            return self._json({"slots": []})
        now = fields.Datetime.now()
        schedule = widget._mango_schedule()
        slots = []
        for start, _end in schedule.openings(now, widget.slot_count):
            if start <= now.replace(tzinfo=dt.timezone.utc):
                continue
            slots.append(
                {
                    "value": start.isoformat(),
                    "label": widget._mango_format_moment(start, request.env.lang),
                }
            )
        return self._json({"slots": slots})
