import datetime as dt
import logging

from odoo import _, fields, http
from odoo.http import request

_logger = logging.getLogger(__name__)


class MangoCallbackController(http.Controller):
    def _widget(self, widget_id):
        try:
            widget_id = int(widget_id)
        except (TypeError, ValueError):
            return None
        widget = request.env["mango.callback.widget"].sudo().browse(widget_id).exists()
        if not widget or widget.website_id != request.website:
            return None
        return widget

    def _form_values(self, params):
        return {
            "phone": (params.get("phone") or "").strip(),
            "country": (params.get("country") or "").strip().upper()[:2] or None,
            "name": params.get("name"),
            "consent": params.get("consent"),
            "slot": params.get("slot") or None,
            "honeypot": params.get("company_website"),
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
            if not request.validate_csrf(params.get("csrf_token")):
                message = _("Your session has expired. Reload the page and try again.")
                request.env["mango.callback.request"].sudo()._mango_refuse(
                    {
                        "widget_id": widget.id,
                        "phone": (values["phone"] or "-")[:64],
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
        if not widget or not request.validate_csrf(params.get("csrf_token")):
            return self._json({"errors": {}}, status=400)
        values = self._form_values(params)
        _e164, error = widget._mango_check_number(values["phone"], values["country"])
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
