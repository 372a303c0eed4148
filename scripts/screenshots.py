#!/usr/bin/env python3
"""Screenshots of the running demo (scripts/demo.sh) with headless Chromium.

    python3 scripts/screenshots.py [--url http://localhost:8069]
        [--sim-control http://127.0.0.1:8070/_sim] [--out docs/screenshots] [--only NAME ...]
        [--lang ru_RU] [--view-as LOGIN --view-password PASSWORD]

Drives /usr/bin/chromium over the DevTools protocol (websocket-client), logged in as
admin through /web/session/authenticate, at 1280×800 (``*_mobile`` shots: a 390×844
phone). Each view is waited for by a selector it must show; a view whose action or
records do not exist in this database is skipped with a message (the exit status is 1
only when a capture fails).

Shots: settings, call_log, pbx_commands (the outbox, after a click-to-call),
call_form (with the recording player), incoming_card (a
live incoming call for extension 101 played by the simulator), statistics,
contact_form (a contact's phone fields with their call buttons),
directory_connection (the directory form after Test connection), directory_preview,
and the website widget: website_widget_compact, website_widget_full (open),
website_widget_countdown, website_widget_called (the countdown over),
website_widget_after_hours, and the same on a phone (``_mobile``, where full mode
starts collapsed: website_widget_open_mobile shows the panel opened).

``--lang`` shows the backend and the website in another language (installed and
added to the website if needed; the viewer's own language is restored at the end).

``--view-as`` shows the backend as another user (a salesperson with the
Telephony user role, say) while the admin prepares the data: what that user's
rights let them see is what is captured, and the incoming call rings that
user's extension.
The widget shots change the demo widget for a moment (mode, a short countdown,
office hours around the clock or none, roomy limits) and put it back.
"""

import argparse
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
import websocket

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 1280, 800
PHONE = (390, 844)


class Skip(Exception):
    """The view is not part of this database (yet)."""


class Odoo:
    """JSON-RPC as the demo's admin."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if not db:
            db = self._rpc("/web/database/list", {})[0]
        self.db = db
        self._rpc(
            "/web/session/authenticate",
            {"db": db, "login": login, "password": password},
        )
        self.session_id = self.session.cookies.get("session_id")
        if not self.session_id:
            raise SystemExit(f"could not log in to {self.url} as {login}")

    def _rpc(self, path, params):
        response = self.session.post(
            self.url + path,
            json={"jsonrpc": "2.0", "method": "call", "params": params},
            timeout=60,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("error"):
            data = body["error"].get("data", {})
            raise RuntimeError(data.get("message") or body["error"])
        return body["result"]

    def call(self, model, method, *args, **kwargs):
        return self._rpc(
            "/web/dataset/call_kw",
            {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
        )

    def xmlid_exists(self, xmlid):
        module, name = xmlid.split(".", 1)
        return bool(
            self.call(
                "ir.model.data",
                "search_count",
                [("module", "=", module), ("name", "=", name)],
            )
        )

    def has_model(self, model):
        return bool(self.call("ir.model", "search_count", [("model", "=", model)]))

    def has_field(self, model, field):
        return bool(
            self.call(
                "ir.model.fields",
                "search_count",
                [("model", "=", model), ("name", "=", field)],
            )
        )


class Chromium:
    """One headless Chromium tab over the DevTools protocol."""

    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="mango-shots-")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                f"--window-size={WIDTH},{HEIGHT}",
                "--lang=en-US",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise SystemExit("Chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )
        self._id = 0
        self.send("Page.enable")
        self.send("Network.enable")
        self.set_viewport(WIDTH, HEIGHT)

    def set_viewport(self, width, height, mobile=False):
        self.width, self.height = width, height
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    def send(self, method, **params):
        self._id += 1
        message_id = self._id
        self.ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if result.get("exceptionDetails"):
            raise RuntimeError(result["exceptionDetails"].get("text"))
        return result.get("result", {}).get("value")

    def navigate(self, url):
        self.send("Page.navigate", url=url)
        self.wait_for_js("document.readyState === 'complete'", 60, url)

    def wait_for_js(self, expression, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(expression):
                    return
            except RuntimeError:
                pass  # the page is between two documents
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what}")

    def wait_for(self, selector, timeout=45):
        # Visible, not merely present: Odoo renders some views hidden first.
        js = (
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " return !!el && el.getClientRects().length > 0; })()"
        )
        self.wait_for_js(js, timeout, selector)

    def wait_idle(self, settle=1.0):
        """No Odoo RPC running and nothing blocking the UI, then ``settle`` seconds."""
        self.wait_for_js(
            "!document.querySelector('.o_loading_indicator, .o_blockUI')", 30, "idle"
        )
        time.sleep(settle)

    def set_cookie(self, url, name, value):
        parts = urlsplit(url)
        self.send(
            "Network.setCookie",
            name=name,
            value=value,
            domain=parts.hostname,
            path="/",
            httpOnly=True,
        )

    def clear_cookies(self):
        self.send("Network.clearBrowserCookies")

    def screenshot(self, path):
        data = self.send(
            "Page.captureScreenshot",
            format="png",
            clip={
                "x": 0,
                "y": 0,
                "width": self.width,
                "height": self.height,
                "scale": 1,
            },
        )["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


class Shots:
    def __init__(self, args):
        self.args = args
        self.url = args.url.rstrip("/")
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.odoo = Odoo(self.url, args.db, args.login, args.password)
        # The browser's session: the admin's, or the user the shots are taken as.
        self.viewer = (
            Odoo(self.url, self.odoo.db, args.view_as, args.view_password)
            if args.view_as
            else self.odoo
        )
        self.viewer_login = args.view_as or args.login
        self.lang = args.lang
        self.url_code = ""
        self._restore_lang = None
        if self.lang and self.lang != "en_US":
            self._use_language(self.lang)
        self.browser = Chromium(args.chromium)

    def _use_language(self, code):
        """The viewer reads the backend in ``code``; the website offers it."""
        odoo = self.odoo
        langs = odoo.call(
            "res.lang",
            "search_read",
            [("code", "=", code), ("active", "in", (True, False))],
            fields=["active", "url_code"],
        )
        websites = odoo.call("website", "search", [])
        if not langs or not langs[0]["active"]:
            wizard = odoo.call(
                "base.language.install",
                "create",
                {"lang_ids": [(6, 0, [lang["id"] for lang in langs])]} if langs else {},
            )
            odoo.call("base.language.install", "lang_install", [wizard])
            langs = odoo.call(
                "res.lang",
                "search_read",
                [("code", "=", code)],
                fields=["active", "url_code"],
            )
        for website in websites:
            odoo.call(
                "website", "write", [website], {"language_ids": [(4, langs[0]["id"])]}
            )
        user = odoo.call(
            "res.users",
            "search_read",
            [("login", "=", self.viewer_login)],
            fields=["lang"],
        )[0]
        self._restore_lang = (user["id"], user["lang"])
        odoo.call("res.users", "write", [user["id"]], {"lang": code})
        self.url_code = langs[0]["url_code"]

    def close(self):
        try:
            self.browser.close()
        finally:
            if self._restore_lang:
                user_id, lang = self._restore_lang
                self.odoo.call("res.users", "write", [user_id], {"lang": lang})

    def login(self):
        self.browser.set_cookie(self.url, "session_id", self.viewer.session_id)

    def action_url(self, xmlid, res_id=None):
        if not self.odoo.xmlid_exists(xmlid):
            raise Skip(f"action {xmlid} does not exist in this database")
        return f"{self.url}/odoo/action-{xmlid}" + (f"/{res_id}" if res_id else "")

    def backend(self, url, selector, settle=1.5):
        self.login()
        self.browser.navigate(url)
        self.browser.wait_for(selector)
        self.browser.wait_idle(settle)

    def hide_call_cards(self):
        """Cards of the demo's background calls would cover the view being shown."""
        self.browser.evaluate(
            "document.querySelectorAll('.o_mango_call_cards')"
            ".forEach(el => el.style.setProperty('display', 'none', 'important'))"
        )

    def close_call_cards(self):
        self.browser.evaluate(
            "document.querySelectorAll('.o_mango_call_card .btn-close')"
            ".forEach(el => el.click())"
        )
        time.sleep(0.5)

    # ---- shots -------------------------------------------------------------------
    def shot_settings(self):
        url = self.action_url("mango_telephony.mango_telephony_settings_action")
        self.backend(url, ".app_settings_block[data-key='mango_telephony']")
        # The app's block, not the settings' first screen.
        self.browser.evaluate(
            "document.querySelector(\"[data-key='mango_telephony']\")"
            "?.scrollIntoView({block: 'start'})"
        )
        time.sleep(0.5)

    def shot_call_log(self):
        url = self.action_url("mango_telephony.mango_call_action")
        self.backend(url, ".o_list_view .o_data_row")

    def shot_call_log_pivot(self):
        """The call log's pivot (employees × weeks × statuses), its labels
        formatted once per value (models/group_labels.py)."""
        url = self.action_url("mango_telephony.mango_call_action")
        self.backend(f"{url}?view_type=pivot", ".o_pivot table")

    def shot_statistics_pivot(self):
        """ "Call analysis", the statistics' pivot."""
        url = self.action_url("mango_telephony.mango_call_stat_action")
        self.backend(f"{url}?view_type=pivot", ".o_pivot table")

    def shot_pbx_commands(self):
        # One click-to-call of the viewer's, so that the outbox is not empty.
        self.viewer.call("res.users", "mango_click_to_call", "+79161234567")
        url = self.action_url("mango_telephony.mango_command_action")
        self.backend(url, ".o_list_view .o_data_row")

    def shot_call_form(self):
        recordings = self.odoo.call(
            "mango.call.recording",
            "search_read",
            [("state", "in", ("stored", "linked"))],
            fields=["call_id"],
            limit=1,
            order="id desc",
        )
        if not recordings:
            raise Skip(
                "no call has a fetched recording yet (recording cron still running?)"
            )
        call_id = recordings[0]["call_id"][0]
        url = self.action_url("mango_telephony.mango_call_action", call_id)
        self.backend(url, ".o_form_view .o_form_sheet")
        self.browser.wait_for("audio", timeout=20)
        self.browser.evaluate(
            "document.querySelector('audio')?.scrollIntoView({block: 'center'})"
        )
        time.sleep(0.5)

    def shot_incoming_card(self):
        if not self.args.sim_control:
            raise Skip("no --sim-control: cannot play an incoming call")
        url = self.action_url("mango_telephony.mango_call_action")
        self.backend(url, ".o_list_view .o_data_row")
        # The card arrives over the bus: give the websocket a moment to subscribe.
        time.sleep(2)
        self.close_call_cards()
        control = self.args.sim_control.rstrip("/")
        # As the README's command plays it (in real time), but held while it rings.
        entry = requests.post(
            f"{control}/scenarios/incoming_answered",
            json={
                "extension": self.viewer_extension(),
                # A demo customer the background calls never use: one card only.
                "from_number": "79036415590",
                "live": True,
            },
            timeout=30,
        ).json()["entry_id"]
        try:
            try:
                self.browser.wait_for(".o_mango_call_card .text-bg-success", timeout=30)
            except TimeoutError as error:
                raise Skip(f"no incoming-call card appeared ({error})") from error
            # Only this call's card: a background call may ring at the same time.
            # (the card shows the number formatted; data-number keeps E.164)
            self.browser.evaluate(
                "document.querySelectorAll('.o_mango_call_card').forEach(el => {"
                " if (!el.querySelector('[data-number=\"+79036415590\"]'))"
                " el.style.setProperty('display', 'none', 'important'); })"
            )
            # While it rings: the call is moved on right after.
            time.sleep(0.7)
            self.browser.screenshot(self.out / "incoming_card.png")
        finally:
            self._finish_call(control, entry)
        return True

    def viewer_extension(self):
        """The extension whose calls the viewer's cards show."""
        user = self.odoo.call(
            "res.users",
            "search_read",
            [("login", "=", self.viewer_login)],
            fields=["mango_extension"],
        )
        if not user or not user[0]["mango_extension"]:
            raise Skip(f"{self.viewer_login} has no extension: no card to show")
        return user[0]["mango_extension"]

    def _finish_call(self, control, entry):
        for action in ("answer", "hangup"):
            requests.post(f"{control}/calls/{entry}/{action}", json={}, timeout=30)

    def shot_statistics(self):
        url = self.action_url("mango_telephony.mango_call_stat_dashboard_action")
        self.backend(url, ".o_mango_call_dashboard", settle=1)
        month = ".o_mango_period_month"
        if self.browser.evaluate(f"!!document.querySelector('{month}')"):
            self.browser.evaluate(f"document.querySelector('{month}').click()")
        self.browser.wait_idle(2.5)

    def shot_contact_form(self):
        """A contact with a phone and a mobile (Odoo 19.0 has only the phone): each
        shows its call button, without hovering, next to Odoo's SMS button."""
        numbers = [("phone", "!=", False)]
        if self.odoo.has_field("res.partner", "mobile"):
            numbers.append(("mobile", "!=", False))
        partners = self.odoo.call(
            "res.partner",
            "search_read",
            [*numbers, ("is_company", "=", False)],
            fields=["id"],
            limit=1,
            order="id",
        )
        if not partners:
            raise Skip("no contact with a phone (and a mobile where there is one)")
        self.login()
        self.browser.navigate(f"{self.url}/odoo/contacts/{partners[0]['id']}")
        self.browser.wait_for(".o_form_view .o_field_phone")
        # The pointer away from the fields, as a user reading the form has it.
        self.browser.send(
            "Input.dispatchMouseEvent", type="mouseMoved", x=WIDTH - 5, y=HEIGHT - 5
        )
        self.browser.wait_idle(1.5)

    def _directory(self):
        if not self.odoo.has_model("mango.ldap.directory"):
            raise Skip("mango_ldap is not installed")
        directories = self.odoo.call(
            "mango.ldap.directory", "search", [], limit=1, order="id"
        )
        if not directories:
            raise Skip("no directory (was the bundled slapd started?)")
        return directories[0]

    def shot_directory_connection(self):
        directory = self._directory()
        url = self.action_url("mango_ldap.mango_ldap_directory_action", directory)
        self.backend(url, ".o_form_view .o_form_sheet")
        self.browser.evaluate(
            "document.querySelector(\"button[name='action_test_connection']\").click()"
        )
        self.browser.wait_for(".o_notification", timeout=60)
        self.browser.wait_for(".o_field_widget[name='connection_message']", timeout=30)
        self.browser.wait_idle(1)

    def shot_directory_preview(self):
        if not self.odoo.has_model("mango.ldap.sync.run"):
            raise Skip("mango_ldap is not installed")
        runs = self.odoo.call(
            "mango.ldap.sync.run",
            "search_read",
            [("dry_run", "=", True)],
            fields=["id"],
            limit=1,
            order="id desc",
        )
        if not runs:
            raise Skip("no directory preview run (was the bundled slapd started?)")
        url = self.action_url("mango_ldap.mango_ldap_sync_run_action", runs[0]["id"])
        self.backend(url, ".o_form_view .o_form_sheet")

    # ---- the website widget, as a visitor -------------------------------------
    WIDGET_FIELDS = [
        "display_mode",
        "countdown_seconds",
        "calendar_id",
        "limit_ip_short",
        "limit_ip_long",
        "limit_number_short",
        "limit_number_long",
    ]

    def _calendar(self, name, attendances):
        found = self.odoo.call(
            "resource.calendar", "search", [("name", "=", name)], limit=1
        )
        if found:
            return found[0]
        return self.odoo.call(
            "resource.calendar",
            "create",
            {
                "name": name,
                "tz": "Europe/Moscow",
                "attendance_ids": [(5, 0, 0)] + [(0, 0, a) for a in attendances],
            },
        )

    def _hours(self, open_now):
        """A calendar open around the clock, or one never open now (a single
        hour, three days ahead)."""
        if open_now:
            days = [
                {
                    "name": f"{day} 0-24",
                    "dayofweek": str(day),
                    "hour_from": 0,
                    "hour_to": 24,
                    "day_period": "morning",
                }
                for day in range(7)
            ]
            return self._calendar("Screenshots: around the clock", days)
        day = (time.gmtime().tm_wday + 3) % 7
        hour = {
            "name": "one hour",
            "dayofweek": str(day),
            "hour_from": 10,
            "hour_to": 11,
            "day_period": "morning",
        }
        return self._calendar("Screenshots: closed now", [hour])

    @contextlib.contextmanager
    def _widget(self, mode="compact", open_now=None, mobile=False):
        """The demo widget as a fresh visitor sees it, set up for one shot."""
        if not self.odoo.has_model("mango.callback.widget"):
            raise Skip("mango_callback is not installed")
        widgets = self.odoo.call(
            "mango.callback.widget",
            "search_read",
            [("active", "=", True)],
            fields=self.WIDGET_FIELDS,
            limit=1,
        )
        if not widgets:
            raise Skip("no active call-back widget")
        saved = widgets[0]
        widget_id = saved.pop("id")
        saved["calendar_id"] = saved["calendar_id"][0]
        values = {
            "display_mode": mode,
            "countdown_seconds": 6,
            "limit_ip_short": 100,
            "limit_ip_long": 100,
            "limit_number_short": 100,
            "limit_number_long": 100,
        }
        if open_now is not None:
            values["calendar_id"] = self._hours(open_now)
        self.odoo.call("mango.callback.widget", "write", [widget_id], values)
        try:
            if mobile:
                self.browser.set_viewport(*PHONE, mobile=True)
            # A visitor, not the admin: no editor bar; a fresh visitor's first view.
            self.browser.clear_cookies()
            prefix = f"/{self.url_code}" if self.url_code else ""
            self.browser.navigate(f"{self.url}{prefix}/contactus")
            self.browser.wait_for(".o_mango_callback.o_mango_callback_ready")
            yield
        finally:
            self.browser.set_viewport(WIDTH, HEIGHT)
            self.odoo.call("mango.callback.widget", "write", [widget_id], saved)

    def _open_widget(self):
        self.browser.evaluate(
            "document.querySelector('.o_mango_callback_toggle').click()"
        )
        self.browser.wait_for("#o_mango_callback_panel")
        time.sleep(0.5)

    def _ask_for_a_call(self, number):
        self._open_widget()
        self.browser.evaluate(
            "(() => { const input = document.querySelector("
            "'.o_mango_callback_panel input[name=phone]');"
            f" input.value = {json.dumps(number)};"
            " input.dispatchEvent(new Event('input', {bubbles: true}));"
            " document.querySelector('.o_mango_callback_submit').click(); })()"
        )
        self.browser.wait_for(".o_mango_callback_result")

    def _widget_compact(self, mobile=False):
        with self._widget("compact", mobile=mobile):
            time.sleep(1)
            self.browser.screenshot(self._path)
        return True

    def _widget_full(self, mobile=False):
        with self._widget("full", mobile=mobile):
            # on a phone full mode starts collapsed, not to cover the page
            self.browser.wait_for(
                ".o_mango_callback_toggle" if mobile else "#o_mango_callback_panel"
            )
            time.sleep(1)
            self.browser.screenshot(self._path)
        return True

    def shot_website_widget_open_mobile(self):
        with self._widget("compact", mobile=True):
            self._open_widget()
            self.browser.screenshot(self._path)
        return True

    def _widget_countdown(self, mobile=False, wait_for_end=False):
        number = f"916 555-01-{int(time.time()) % 100:02d}"
        with self._widget("compact", open_now=True, mobile=mobile):
            self._ask_for_a_call(number)
            if wait_for_end:
                self.browser.wait_for(".o_mango_callback_final", timeout=20)
            else:
                self.browser.wait_for(".o_mango_callback_count")
            time.sleep(0.5)
            self.browser.screenshot(self._path)
        return True

    def _widget_after_hours(self, mobile=False):
        number = f"916 555-02-{int(time.time()) % 100:02d}"
        with self._widget("compact", open_now=False, mobile=mobile):
            self._ask_for_a_call(number)
            time.sleep(1)
            self.browser.screenshot(self._path)
        return True

    def shot_website_widget_compact(self):
        return self._widget_compact()

    def shot_website_widget_full(self):
        return self._widget_full()

    def shot_website_widget_countdown(self):
        return self._widget_countdown()

    def shot_website_widget_called(self):
        return self._widget_countdown(wait_for_end=True)

    def shot_website_widget_after_hours(self):
        return self._widget_after_hours()

    def shot_website_widget_compact_mobile(self):
        return self._widget_compact(mobile=True)

    def shot_website_widget_full_mobile(self):
        return self._widget_full(mobile=True)

    def shot_website_widget_countdown_mobile(self):
        return self._widget_countdown(mobile=True)

    def shot_website_widget_called_mobile(self):
        return self._widget_countdown(mobile=True, wait_for_end=True)

    def shot_website_widget_after_hours_mobile(self):
        return self._widget_after_hours(mobile=True)

    NAMES = (
        "settings",
        "call_log",
        "call_log_pivot",
        "statistics_pivot",
        "pbx_commands",
        "call_form",
        "incoming_card",
        "statistics",
        "contact_form",
        "directory_connection",
        "directory_preview",
        "website_widget_compact",
        "website_widget_full",
        "website_widget_countdown",
        "website_widget_called",
        "website_widget_after_hours",
        "website_widget_compact_mobile",
        "website_widget_full_mobile",
        "website_widget_open_mobile",
        "website_widget_countdown_mobile",
        "website_widget_called_mobile",
        "website_widget_after_hours_mobile",
    )

    def run(self):
        failed = 0
        for name in self.args.only or self.NAMES:
            path = self.out / f"{name}.png"
            self._path = path
            try:
                captured = getattr(self, f"shot_{name}")()
                if not captured:
                    self.hide_call_cards()
                    self.browser.screenshot(path)
                (self.out / f"{name}.failed.png").unlink(missing_ok=True)
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                print(f"ok       {name:<24} {shown}")
            except Skip as reason:
                print(f"SKIPPED  {name:<24} {reason}")
            except Exception as error:  # one broken view must not stop the others
                failed += 1
                print(f"FAILED   {name:<24} {error}")
                try:
                    self.browser.screenshot(self.out / f"{name}.failed.png")
                except Exception:  # noqa: BLE001
                    pass
        return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--url", default=f"http://localhost:{os.environ.get('MANGO_DEMO_PORT', '8069')}"
    )
    parser.add_argument(
        "--sim-control",
        default=f"http://127.0.0.1:{os.environ.get('MANGO_SIM_PORT', '8070')}/_sim",
    )
    parser.add_argument("--db", help="database (default: the server's first)")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument(
        "--view-as",
        metavar="LOGIN",
        help="take the backend shots as this user (--login prepares the data)",
    )
    parser.add_argument("--view-password")
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument(
        "--chromium", default=shutil.which("chromium") or "/usr/bin/chromium"
    )
    parser.add_argument("--only", nargs="+", choices=Shots.NAMES)
    parser.add_argument(
        "--lang", default="en_US", help="e.g. ru_RU, fi_FI (default en_US)"
    )
    args = parser.parse_args(argv)
    shots = Shots(args)
    try:
        return 1 if shots.run() else 0
    finally:
        shots.close()


if __name__ == "__main__":
    sys.exit(main())
