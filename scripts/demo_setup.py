"""Demo wiring that needs the Mango account: run inside `odoo shell` by scripts/demo.sh.

    odoo shell -d DB ... < scripts/demo_setup.py

Environment: MANGO_SIM_CONTROL (the simulator's /_sim URL, required);
LDAP_* from `scripts/ldap/slapd.sh start` (optional: the directory-sync step);
MANGO_DEMO_WIRE_ACCOUNT=1 with MANGO_SIM_URL, MANGO_API_KEY, MANGO_API_SALT and
MANGO_ODOO_URL wires the account first (docker-compose.yml's init service).

Every step is idempotent, so running it twice changes nothing:
0. (MANGO_DEMO_WIRE_ACCOUNT=1) the account: the simulator's address, key and salt, a
   connection test, its lines, the main line as default outgoing line, and
   recording links as the simulated PBX allows them;
1. extensions of the demo users on the account (101 admin, 102-104 the sales team);
2. a month of call history: the simulator plays each call with a past start time, and
   every signed event it produced goes through the product's own ingest
   (mango.event._mango_ingest) and processing (fold, caller match, activities,
   statistics), exactly as webhook deliveries do;
3. the website call-back widget (group 900 on the main line, office hours);
4. a directory (mango.ldap.directory) on the bundled slapd, with a first preview run.
"""

# `env` is provided by `odoo shell`.
# ruff: noqa: F821
import os
import random
import time
from datetime import datetime, timedelta, timezone

import requests

from mango_office.rules import MOSCOW

CONTROL = os.environ.get("MANGO_SIM_CONTROL", "").rstrip("/")
HISTORY_FLAG = "mango_demo.history_loaded"
HISTORY_DAYS = int(os.environ.get("MANGO_DEMO_HISTORY_DAYS", "30"))
MAIN_LINE = "74951234567"
SUPPORT_LINE = "78001234567"

# Customers of the demo data (mango_telephony/demo), as Mango sends their numbers.
KNOWN_NUMBERS = (
    "74956123450",  # ООО «Ромашка», main number shared by its contacts
    "79164123321",  # Алексей Кузнецов (also on the open opportunity)
    "79264127788",  # Ольга Белова
    "78126432109",  # АО «ТехноСтрой»
    "79214455120",  # Дмитрий Орлов
    "79214455122",  # Светлана Морозова
    "74956401212",  # ООО «Вектор»
    "79036415590",  # Андрей Громов
    "79164182020",  # ИП Сидоров
    "358942417700",  # Nordic Furniture Oy
    "358504123456",  # Mikko Virtanen
    "493090182044",  # Berlin Office Supplies
    "14155550132",  # Acme Trading
    "79856417710",  # Екатерина Волкова
    "79036415591",  # Сергей Николаев
    "79266418899",  # Наталья Попова
    "442079460958",  # John Miller
    "79776412030",  # lead: Павел Егоров
    "79166410987",  # lead: Ирина Лебедева
)
DEMO_USERS = (
    ("base.user_admin", "101"),
    ("mango_telephony.demo_user_ivan_petrov", "102"),
    ("mango_telephony.demo_user_maria_ivanova", "103"),
    ("mango_telephony.demo_user_petr_sokolov", "104"),
)


def log(message):
    print(f"[demo-setup] {message}", flush=True)


def sim(method, path, **body):
    if not CONTROL:
        raise RuntimeError("MANGO_SIM_CONTROL (the simulator's /_sim URL) is not set")
    response = requests.request(method, f"{CONTROL}/{path}", json=body, timeout=60)
    if response.status_code != 200:
        raise RuntimeError(f"simulator {path}: {response.status_code} {response.text}")
    return response.json()


def wire_account():
    """Point the company's account at the simulator (scripts/demo.sh and
    docker-compose's init service both start with this)."""
    icp = env["ir.config_parameter"].sudo()
    icp.set_param("web.base.url", os.environ["MANGO_ODOO_URL"])
    icp.set_param("web.base.url.freeze", "True")
    company = env.ref("base.main_company")
    Account = env["mango.account"].sudo().with_context(active_test=False)
    account = Account.search([("company_id", "=", company.id)], limit=1)
    values = {
        "name": "Mango Office (simulator)",
        "active": True,
        "company_id": company.id,
        "api_base_url": os.environ["MANGO_SIM_URL"],
        "api_key": os.environ["MANGO_API_KEY"],
        "api_salt": os.environ["MANGO_API_SALT"],
        # The simulator posts from loopback or the compose network, not from
        # Mango's published addresses.
        "ip_filter_mode": "any",
    }
    if account:
        account.write(values)
    else:
        account = Account.create(values)
    env.cr.commit()
    for action in ("action_mango_test_connection", "action_mango_refresh_lines"):
        if hasattr(account, action):
            try:
                getattr(account, action)()
                env.cr.commit()
            except Exception as error:  # the demo still starts; the UI shows the state
                env.cr.rollback()
                log(f"{action}: {error}")
    wire_calling_and_recordings(account)
    log(f"account {account.id} -> {values['api_base_url']}")


def wire_calling_and_recordings(account):
    """What a shop sets up after the first connection test: calls from Odoo go
    out on the main line, and recordings play through Mango's links when the
    PBX's API connector allows them (the simulator's state says)."""
    lines = (
        env["mango.line"]
        .sudo()
        .search([("account_id", "=", account.id), ("usable_outgoing", "=", True)])
    )
    line = lines.filtered(lambda ln: ln.number == MAIN_LINE)[:1] or lines[:1]
    values = {
        "recording_links_allowed": bool(
            sim("GET", "state").get("recording_links_enabled")
        )
    }
    if line and not account.default_line_id:
        values["default_line_id"] = line.id
    account.write(values)
    env.cr.commit()
    log(
        f"account {account.id}: outgoing line {account.default_line_id.number or '-'}, "
        f"recording links {'on' if values['recording_links_allowed'] else 'off'}"
    )


def demo_account():
    company = env.ref("base.main_company")
    account = env["mango.account"].sudo().search([("company_id", "=", company.id)])
    if not account:
        raise RuntimeError("no Mango account: the wiring step must run first")
    return account[:1]


# ---------------------------------------------------------------- extensions
def wire_extensions(account):
    Mapping = env["mango.account.user"].sudo()
    for xmlid, extension in DEMO_USERS:
        user = env.ref(xmlid, raise_if_not_found=False)
        if not user:
            continue
        existing = Mapping.search(
            [
                ("account_id", "=", account.id),
                "|",
                ("user_id", "=", user.id),
                ("extension", "=", extension),
            ]
        )
        if existing.filtered(
            lambda m, u=user, e=extension: (m.user_id, m.extension) == (u, e)
        ):
            continue
        existing.unlink()
        Mapping.create(
            {"account_id": account.id, "user_id": user.id, "extension": extension}
        )
    # Missed calls nobody owns become the sales lead's follow-up activities.
    if "missed_call_user_id" in account._fields and not account.missed_call_user_id:
        account.missed_call_user_id = env.ref("base.user_admin")
    env.cr.commit()
    log("extensions: admin 101, Иван 102, Мария 103, Пётр 104")


# ------------------------------------------------------------------- history
def plan_history(rng, now):
    """(start_time, scenario, options) for a month of a small shop's calls."""
    unknown = [
        f"79{rng.randint(10, 99)}{rng.randint(1000000, 9999999)}" for _ in range(40)
    ]
    plan = []
    today = now.astimezone(MOSCOW).replace(hour=0, minute=0, second=0, microsecond=0)
    for days_ago in range(HISTORY_DAYS, 0, -1):
        day = today - timedelta(days=days_ago)
        weekend = day.weekday() >= 5
        count = rng.randint(1, 3) if weekend else rng.randint(7, 12)
        for _ in range(count):
            start = day + timedelta(
                hours=rng.choice(
                    (9, 10, 10, 11, 11, 12, 13, 14, 14, 15, 16, 16, 17, 18)
                ),
                minutes=rng.randint(0, 59),
                seconds=rng.randint(0, 59),
            )
            if weekend:
                start = start.replace(hour=rng.randint(10, 15))
            known = rng.random() < 0.65
            number = rng.choice(KNOWN_NUMBERS) if known else rng.choice(unknown)
            plan.extend(plan_call(rng, int(start.timestamp()), number))
    plan.sort(key=lambda item: item[0])
    return [p for p in plan if p[0] < now.timestamp() - 600]


def plan_call(rng, start, number):
    extension = rng.choice(("101", "101", "102", "102", "103", "104"))
    support = extension == "104"
    line = SUPPORT_LINE if support else MAIN_LINE
    group = "901" if support else "900"
    talk = int(min(1500, rng.lognormvariate(4.4, 0.8)))
    base = {"start_time": start, "line_number": line, "seed": start}
    roll = rng.random()
    calls = []
    if roll < 0.45:
        calls.append(
            (
                start,
                "incoming_answered",
                dict(
                    base,
                    from_number=number,
                    extension=extension,
                    group=group,
                    ring_seconds=rng.randint(3, 25),
                    talk_seconds=talk,
                ),
            )
        )
    elif roll < 0.62:
        scenario = (
            "incoming_missed_queue"
            if rng.random() < 0.75
            else "incoming_missed_no_operator"
        )
        calls.append(
            (
                start,
                scenario,
                dict(
                    base,
                    from_number=number,
                    group=group,
                    ring_seconds=rng.randint(15, 40),
                ),
            )
        )
        # Most missed calls are called back, some within minutes, some hours later.
        if rng.random() < 0.75:
            delay = rng.choice((180, 420, 900, 1800, 3600, 7200, 14400))
            calls.append(
                (
                    start + delay,
                    "click_to_call",
                    dict(
                        base,
                        start_time=start + delay,
                        seed=start + delay,
                        to_number=number,
                        extension="101"
                        if support
                        else rng.choice(("101", "102", "103")),
                        talk_seconds=int(talk * 0.7) + 15,
                    ),
                )
            )
    elif roll < 0.88:
        calls.append(
            (
                start,
                "click_to_call",
                dict(
                    base,
                    to_number=number,
                    extension=extension,
                    answered=rng.random() < 0.8,
                    talk_seconds=talk,
                ),
            )
        )
    elif roll < 0.95:
        others = [e for e in ("101", "102", "103") if e != extension]
        calls.append(
            (
                start,
                "transfer",
                dict(
                    base,
                    line_number=MAIN_LINE,
                    from_number=number,
                    extension="104" if support else extension,
                    to_extension=rng.choice(others),
                    talk_seconds=rng.randint(15, 60),
                    second_talk_seconds=talk,
                ),
            )
        )
    else:
        # A website call-back request: the customer is called first, then group 900.
        calls.append(
            (
                start,
                "callback_group",
                dict(
                    base,
                    line_number=MAIN_LINE,
                    group="900",
                    from_number=number,
                    talk_seconds=talk,
                    answered=rng.random() < 0.9,
                ),
            )
        )
    return calls


def load_history(account):
    icp = env["ir.config_parameter"].sudo()
    if icp.get_param(HISTORY_FLAG) == str(account.id):
        log("call history: already loaded")
        return
    started = time.monotonic()
    now = datetime.now(timezone.utc)
    plan = plan_history(random.Random(2026), now)
    Event = env["mango.event"].sudo()
    webhook = sim("GET", "webhook")
    # Events are collected from the simulator's delivery log and ingested here, so
    # nothing is posted to an Odoo that is not listening yet.
    sim("POST", "webhook", url=None)
    ingested = duplicates = 0
    try:
        for _start, scenario, options in plan:
            # At once: the control API plays calls in real time unless told.
            result = sim("POST", f"scenarios/{scenario}", pace="instant", **options)
            for delivery in result.get("deliveries", []):
                _event_id, is_new = Event._mango_ingest(
                    account, delivery["path"], delivery["json"], "127.0.0.1"
                )
                ingested += is_new
                duplicates += not is_new
    finally:
        sim("POST", "webhook", url=webhook.get("url"))
    env.cr.commit()
    log(f"call history: {len(plan)} calls, {ingested} events stored")
    processed = 0
    while True:
        done = Event._mango_process_pending(limit=300)
        env.cr.commit()
        processed += done
        if not done:
            break
    failed = Event.search_count(
        [("account_id", "=", account.id), ("state", "=", "failed")]
    )
    Stat = env.get("mango.call.stat")
    if Stat is not None and hasattr(Stat, "_mango_rebuild"):
        Stat.sudo()._mango_rebuild()
    icp.set_param(HISTORY_FLAG, str(account.id))
    env.cr.commit()
    calls = env["mango.call"].sudo().search_count([("account_id", "=", account.id)])
    log(
        f"call history: {processed} events processed ({failed} failed), {calls} calls "
        f"in the log, {time.monotonic() - started:.0f} s"
    )


# -------------------------------------------------------------- call-back widget
def office_hours_calendar():
    Calendar = env["resource.calendar"].sudo()
    name = "Отдел продаж: пн–пт 9–20, сб 10–16"
    calendar = Calendar.search([("name", "=", name)], limit=1)
    if calendar:
        return calendar
    attendances = [
        (
            0,
            0,
            {
                "name": f"{day} {start}-{end}",
                "dayofweek": str(day),
                "hour_from": start,
                "hour_to": end,
                "day_period": "morning" if start < 12 else "afternoon",
            },
        )
        for day in range(5)
        for start, end in ((9, 13), (13, 20))
    ]
    attendances.append(
        (
            0,
            0,
            {
                "name": "5 10-16",
                "dayofweek": "5",
                "hour_from": 10,
                "hour_to": 16,
                "day_period": "morning",
            },
        )
    )
    return Calendar.create(
        {
            "name": name,
            "tz": "Europe/Moscow",
            "company_id": env.ref("base.main_company").id,
            "attendance_ids": attendances,
        }
    )


def wire_callback_widget(account):
    if "mango.callback.widget" not in env:
        log("call-back widget: mango_callback not installed, skipped")
        return
    Widget = env["mango.callback.widget"].sudo().with_context(active_test=False)
    website = env["website"].sudo().search([], limit=1)
    line = (
        env["mango.line"]
        .sudo()
        .search([("account_id", "=", account.id), ("number", "=", MAIN_LINE)], limit=1)
    )
    values = {
        "name": "Обратный звонок: отдел продаж",
        "website_id": website.id,
        "account_id": account.id,
        "active": True,
        "display_mode": "compact",
        "countdown_seconds": 30,
        "target_type": "group",
        "group_extension": "900",
        "calendar_id": office_hours_calendar().id,
        "ask_name": True,
        "create_lead": True,
    }
    if line:
        values["line_id"] = line.id
    widget = Widget.search([("website_id", "=", website.id)], limit=1)
    if widget:
        widget.write(values)
    else:
        widget = Widget.create(values)
    env.cr.commit()
    log(
        f"call-back widget {widget.id} on {website.name}: group 900, line {line.number or '-'}"
    )


# ------------------------------------------------------------ directory sync
def wire_directory(account):
    if "mango.ldap.directory" not in env:
        log("directory: mango_ldap not installed, skipped")
        return
    Directory = env["mango.ldap.directory"].sudo().with_context(active_test=False)
    name = "Офисный каталог (OpenLDAP)"
    directory = Directory.search([("name", "=", name)], limit=1)
    if directory:
        # Rewriting servers or bases would flag a scope change (removals held).
        log(f"directory {directory.id}: already configured")
        return
    uri = os.environ.get("LDAPS_URI")
    if not uri:
        log("directory: no bundled slapd running, skipped")
        return
    host, port = uri.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    with open(os.environ["LDAP_CA_FILE"]) as ca:
        ca_pem = ca.read()
    values = {
        "name": name,
        "transport": "ldaps",
        "ca_certificate": ca_pem,
        "verify_certificate": True,
        "bind_dn": os.environ["LDAP_BIND_DN"],
        "bind_password_input": os.environ["LDAP_BIND_PW"],
        "account_id": account.id,
        # No scheduled delta sync: the demo shows the preview and the admin applies it.
        "delta_interval": 0,
        "server_ids": [(5, 0, 0), (0, 0, {"host": host, "port": int(port)})],
        "base_dn_ids": [
            (5, 0, 0),
            (
                0,
                0,
                {"dn": f"ou=people,{os.environ['LDAP_BASE_DN']}", "scope": "subtree"},
            ),
        ],
    }
    directory = Directory.create(values)
    directory.action_preset_openldap()
    env.cr.commit()
    try:
        directory.action_fetch_pbx_options()
        env.cr.commit()
    except Exception as error:  # the preview still shows the Odoo side
        env.cr.rollback()
        log(f"directory: PBX options not fetched: {error}")
    run = directory._mango_run(
        mode="full", dry_run=True, trigger="manual", commit=False
    )
    env.cr.commit()
    log(f"directory {directory.id}: preview run {run.id} ({run.state})")


def main():
    if os.environ.get("MANGO_DEMO_WIRE_ACCOUNT") == "1":
        wire_account()
    account = demo_account()
    for step in (wire_extensions, load_history, wire_callback_widget, wire_directory):
        try:
            step(account)
        except Exception as error:  # one broken step must not hide the others
            env.cr.rollback()
            log(f"{step.__name__} FAILED: {error!r}")


# `odoo shell` runs this file as __main__; tests load it to call one step.
if __name__ == "__main__":
    main()
