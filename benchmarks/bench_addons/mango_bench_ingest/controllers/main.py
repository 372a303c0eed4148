"""The baseline of the ingest benchmark: the least a webhook can do.

Same dispatch as the product route (type http, public, no CSRF, no session
write), then only: look the salt up by key, verify the signature, insert one
row. The benchmark compares the real ``/mango/events/…`` route against this.
"""

from odoo import http
from odoo.http import request
from odoo.tools import SQL

from mango_office import signing


class MangoBenchController(http.Controller):
    @http.route(
        "/mango_bench/bare/<path:subpath>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def bare(self, subpath=None, **_kwargs):
        form = request.httprequest.form
        key, json_str = form.get("vpbx_api_key") or "", form.get("json") or ""
        cr = request.env.cr
        cr.execute(
            SQL("SELECT api_salt FROM mango_account WHERE api_key = %s AND active", key)
        )
        row = cr.fetchone()
        if not row or not signing.verify(key, json_str, form.get("sign") or "", row[0]):
            return request.make_response("Forbidden", status=403)
        cr.execute(
            SQL(
                "INSERT INTO mango_bench_event (path, payload) VALUES (%s, %s)",
                subpath,
                json_str,
            )
        )
        return request.make_response("OK", status=200)
