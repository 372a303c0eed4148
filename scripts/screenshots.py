#!/usr/bin/env python3
"""Screenshots of the running demo (scripts/demo.sh) with headless Chromium.

    python3 scripts/screenshots.py [--url http://localhost:8069]
        [--sim-control http://127.0.0.1:8070/_sim] [--out docs/screenshots] [--only NAME ...]
        [--lang ru_RU]

Drives /usr/bin/chromium over the DevTools protocol (websocket-client), logged in as
admin through /web/session/authenticate, at 1280×800. Each view is waited for by a
selector it must show; a view whose action or records do not exist in this database
is skipped with a message (the exit status is 1 only when a capture fails).

Shots: settings, call_log, call_form (with the recording player), incoming_card (a
live incoming call for extension 101 played by the simulator), statistics,
contact_form (a contact's phone fields with their call buttons), directory_preview,
website_widget_compact, website_widget_full.

--lang shows the backend in another language (ru_RU, fi_FI…): it is installed if
needed and the admin's language is put back afterwards.
"""

import argparse
import base64
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
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
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
            clip={"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT, "scale": 1},
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
        self.browser = Chromium(args.chromium)
        self.restore_lang = None

    def use_lang(self, code):
        """The admin's backend in ``code`` (installed first if needed)."""
        Lang = "res.lang"
        found = self.odoo.call(
            Lang,
            "search_read",
            [("code", "=", code), ("active", "in", (True, False))],
            fields=["id", "active"],
        )
        if not found:
            raise SystemExit(f"unknown language {code}")
        if not found[0]["active"]:
            print(f"installing {code} (a minute)…")
            wizard = self.odoo.call(
                "base.language.install",
                "create",
                {"lang_ids": [(6, 0, [found[0]["id"]])], "overwrite": False},
            )
            self.odoo.call("base.language.install", "lang_install", [wizard])
        uid = self.odoo.call("res.users", "search", [("login", "=", self.args.login)])
        self.restore_lang = self.odoo.call("res.users", "read", uid, fields=["lang"])[
            0
        ]["lang"]
        self.odoo.call("res.users", "write", uid, {"lang": code})
        self.admin_ids = uid

    def close(self):
        if self.restore_lang:
            self.odoo.call(
                "res.users", "write", self.admin_ids, {"lang": self.restore_lang}
            )
        self.browser.close()

    def login(self):
        self.browser.set_cookie(self.url, "session_id", self.odoo.session_id)

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
                "extension": "101",
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
        """A contact with a phone and a mobile: each shows its call button, without
        hovering, next to Odoo's SMS button."""
        partners = self.odoo.call(
            "res.partner",
            "search_read",
            [
                ("phone", "!=", False),
                ("mobile", "!=", False),
                ("is_company", "=", False),
            ],
            fields=["id"],
            limit=1,
            order="id",
        )
        if not partners:
            raise Skip("no contact with both a phone and a mobile")
        self.login()
        self.browser.navigate(f"{self.url}/odoo/contacts/{partners[0]['id']}")
        self.browser.wait_for(".o_form_view .o_field_phone")
        # The pointer away from the fields, as a user reading the form has it.
        self.browser.send(
            "Input.dispatchMouseEvent", type="mouseMoved", x=WIDTH - 5, y=HEIGHT - 5
        )
        self.browser.wait_idle(1.5)

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

    def _website(self, mode):
        if not self.odoo.has_model("mango.callback.widget"):
            raise Skip("mango_callback is not installed")
        widgets = self.odoo.call(
            "mango.callback.widget",
            "search_read",
            [("active", "=", True)],
            fields=["display_mode"],
            limit=1,
        )
        if not widgets:
            raise Skip("no active call-back widget")
        widget = widgets[0]
        self.odoo.call(
            "mango.callback.widget", "write", [widget["id"]], {"display_mode": mode}
        )
        try:
            # A visitor, not the admin: no editor bar; a fresh visitor's first view.
            self.browser.clear_cookies()
            self.browser.navigate(self.url + "/contactus")
            self.browser.wait_for(".o_mango_callback")
            if mode == "full":
                self.browser.wait_for("#o_mango_callback_panel")
            time.sleep(1.5)
        finally:
            self.odoo.call(
                "mango.callback.widget",
                "write",
                [widget["id"]],
                {"display_mode": widget["display_mode"]},
            )

    def shot_website_widget_compact(self):
        self._website("compact")

    def shot_website_widget_full(self):
        self._website("full")

    NAMES = (
        "settings",
        "call_log",
        "call_form",
        "incoming_card",
        "statistics",
        "contact_form",
        "directory_preview",
        "website_widget_compact",
        "website_widget_full",
    )

    def run(self):
        failed = 0
        for name in self.args.only or self.NAMES:
            path = self.out / f"{name}.png"
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
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument(
        "--chromium", default=shutil.which("chromium") or "/usr/bin/chromium"
    )
    parser.add_argument("--only", nargs="+", choices=Shots.NAMES)
    parser.add_argument("--lang", help="the backend's language, e.g. ru_RU or fi_FI")
    args = parser.parse_args(argv)
    shots = Shots(args)
    try:
        if args.lang:
            shots.use_lang(args.lang)
        return 1 if shots.run() else 0
    finally:
        shots.close()


if __name__ == "__main__":
    sys.exit(main())
