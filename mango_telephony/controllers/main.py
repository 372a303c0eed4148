"""Mango's webhooks: verify → validate → store the raw event → answer 200.

Mango posts ``application/x-www-form-urlencoded`` with ``vpbx_api_key``, ``sign``
and ``json`` to ``<base>/events/…``, ``<base>/result/…`` and ``<base>/ping``
(reference §2.2–2.3) and only looks at the HTTP status. Processing happens
after the commit, in the event worker (``mango.event``), so the answer is fast and
a processing failure never loses the event.

A request whose key, signature or address is wrong is refused with a 403 and
only counted (anyone can send those). A correctly signed one whose body is not a
Mango event of its path (``mango_office.event_validation``), or that repeats a
form field, is answered with a 400 and a short reason, creates nothing, and is
kept as a ``mango.refused.event``: it came from Mango or from someone holding the
key, and either way the administrator should see it. Bad input never produces a
5xx, a traceback or an ERROR line; only a bug would.

Source address: with ``--proxy-mode`` Odoo 18 runs werkzeug's ProxyFix
(``x_for=1``) on every request that carries ``X-Forwarded-Host``, which replaces
``remote_addr`` by the address the trusted proxy appended to
``X-Forwarded-For``. So ``request.httprequest.remote_addr`` is already the right
address in both set-ups, and reading ``X-Forwarded-For`` here would let anyone
spoof it when Odoo is reached directly. The proxy must send ``X-Forwarded-Host``
(Odoo's documented nginx configuration does).
"""

import logging

from werkzeug.exceptions import HTTPException

from odoo import http
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from mango_office import safe_text, signing
from mango_office.events import EventParseError

_logger = logging.getLogger(__name__)

WEBHOOK_BASE = "/mango"
# A Mango event is a few hundred bytes; anything near this is not from Mango.
MAX_BODY = 256 * 1024
FORM_FIELDS = ("vpbx_api_key", "sign", "json")
FORM_MIMETYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _plain(status, text):
    return request.make_response(
        text,
        headers=[("Content-Type", "text/plain; charset=utf-8")],
        status=status,
    )


class MangoWebhookController(http.Controller):
    @http.route(
        [
            f"{WEBHOOK_BASE}/events/<path:subpath>",
            f"{WEBHOOK_BASE}/result/<path:subpath>",
        ],
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
        max_content_length=MAX_BODY,
    )
    def mango_event(self, subpath=None, **_kwargs):
        path = request.httprequest.path[len(WEBHOOK_BASE) + 1 :].strip("/")
        try:
            return self._mango_receive(path)
        except (HTTPException, *PG_CONCURRENCY_EXCEPTIONS_TO_RETRY):
            # Two deliveries of one event racing: Odoo replays the request, and
            # the second one then finds the first one's row. HTTP errors (a body
            # too large) are answers already.
            raise
        except Exception:
            # The boundary: whatever went wrong, Mango (or a prober) gets a short
            # answer, never a traceback; the server log keeps the details.
            _logger.exception("Mango webhook %s failed", path)
            request.env.cr.rollback()
            return _plain(500, "Internal error")

    @http.route(
        f"{WEBHOOK_BASE}/ping",
        type="http",
        auth="public",
        methods=["GET", "POST"],
        csrf=False,
        save_session=False,
        max_content_length=MAX_BODY,
    )
    def mango_ping(self, **_kwargs):
        """Mango's "check connection" must succeed before the cabinet saves the
        address, and its body is undocumented: always 200. A correctly signed ping
        is stored (as ignored) so the settings page shows that it arrived; one
        whose body cannot be stored is kept as a refused event instead."""
        try:
            if request.httprequest.method == "POST":
                self._mango_receive_ping()
        except HTTPException:
            raise
        except Exception:
            _logger.exception("Mango ping could not be recorded")
            request.env.cr.rollback()
        return _plain(200, "OK")

    # ------------------------------------------------------------------ steps

    @staticmethod
    def _mango_address():
        return request.httprequest.remote_addr

    def _mango_refuse(self, status, reason, account_id=None):
        request.env["mango.account"].sudo()._mango_record_refusal(
            reason, self._mango_address(), account_id
        )
        text = {
            "bad_signature": "Forbidden: bad signature",
            "unknown_key": "Forbidden: unknown key",
            "address_not_allowed": "Forbidden: address not allowed",
            "malformed": "Bad request: malformed body",
        }[reason]
        return _plain(status, text)

    def _mango_verified_account(self, form):
        Account = request.env["mango.account"].sudo()
        checker, salt = Account._mango_match_webhook_key(form["vpbx_api_key"])
        if checker is None or not signing.verify(
            form["vpbx_api_key"], form["json"], form["sign"], salt
        ):
            return None
        return checker

    @staticmethod
    def _mango_duplicated_field(form):
        """The first of ``vpbx_api_key``, ``sign``, ``json`` sent more than once:
        which copy was signed would be anyone's guess."""
        return next((name for name in FORM_FIELDS if len(form.getlist(name)) > 1), None)

    def _mango_keep_refused(self, account, path, json_str, reason, field):
        """Keep a signed request whose body was refused; note it on the account."""
        address = self._mango_address()
        request.env["mango.refused.event"].sudo()._mango_keep(
            account, path, json_str, reason, field, address
        )
        shown = safe_text.storable(path, 60, multiline=False)
        request.env["mango.account"].sudo()._mango_record_refusal(
            "invalid_event",
            address,
            account.id,
            detail=f"{shown}: {reason}" + (f" ({field})" if field else ""),
        )

    def _mango_receive(self, path):
        httprequest = request.httprequest
        form = httprequest.form
        json_str = form.get("json")
        if httprequest.mimetype not in FORM_MIMETYPES or not isinstance(json_str, str):
            return self._mango_refuse(400, "malformed")
        api_key = form.get("vpbx_api_key") or ""
        Account = request.env["mango.account"].sudo()
        checker, salt = Account._mango_match_webhook_key(api_key)
        if checker is None:
            return self._mango_refuse(403, "unknown_key")
        account = checker._origin
        if not signing.verify(api_key, json_str, form.get("sign") or "", salt):
            return self._mango_refuse(403, "bad_signature", account.id)
        address = self._mango_address()
        if not checker._mango_ip_allowed(address):
            return self._mango_refuse(403, "address_not_allowed", account.id)
        duplicated = self._mango_duplicated_field(form)
        if duplicated:
            reason, field = "duplicate_form_field", duplicated
        else:
            Event = request.env["mango.event"].sudo()
            try:
                Event._mango_ingest(account, path, json_str, address, wake=True)
            except EventParseError as error:
                reason, field = error.reason, error.field
            else:
                return _plain(200, "OK")
        self._mango_keep_refused(account, path, json_str, reason, field)
        text = f"Bad request: {reason}" + (f" ({field})" if field else "")
        return _plain(413 if reason == "too_large" else 400, text[:100])

    def _mango_receive_ping(self):
        form = request.httprequest.form
        if not all(isinstance(form.get(name), str) for name in FORM_FIELDS):
            return
        checker = self._mango_verified_account(form)
        address = self._mango_address()
        if not checker or not checker._mango_ip_allowed(address):
            return
        account = checker._origin
        duplicated = self._mango_duplicated_field(form)
        if duplicated:
            self._mango_keep_refused(
                account, "ping", form["json"], "duplicate_form_field", duplicated
            )
            return
        try:
            request.env["mango.event"].sudo()._mango_ingest(
                account, "ping", form["json"], address
            )
        except EventParseError as error:
            self._mango_keep_refused(
                account, "ping", form["json"], error.reason, error.field
            )
