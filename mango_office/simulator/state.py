"""The simulated PBX: employees, SIP accounts, groups, lines, roles, recordings, calls.

Everything lives in memory behind one re-entrant lock. ``DEFAULT_SEED`` describes a
small but complete office; a seed file or ``POST /_sim/seed`` replaces it (same shape).

The office is shaped for a directory sync as well as for calls: four employees on
101-104, the two groups (queues) on 900 and 901, out of the way of the staff numbers
a directory's ipPhone or an extension range (100-999, filled from the bottom) hands
out, and a tariff for up to 500 employees, room for the 250 people of the bundled
sample directory (scripts/ldap/sample_directory.py) and a 300-person AD test.
"""

import base64
import copy
import itertools
import threading

DEFAULT_PRODUCT_ID = 400012345
DEFAULT_DOMAIN = "vpbx400012345.mangosip.ru"

DEFAULT_SEED = {
    "product_id": DEFAULT_PRODUCT_ID,
    "balance": 15230.5,
    "currency": "RUB",
    # the tariff's employee limit (member/create answers 5228 beyond it)
    "employee_limit": 500,
    "pbx_services_enabled": True,
    "recording_links_enabled": True,
    "domains": [DEFAULT_DOMAIN, "office.mangosip.ru"],
    "roles": [
        {
            "role_id": 10453,
            "name": "Администратор",
            "permissions": [{"code": "admin", "param": None}],
        },
        {
            "role_id": 10451,
            "name": "Сотрудник",
            "permissions": [
                {"code": "statistics", "param": "own"},
                {"code": "records", "param": "own"},
            ],
        },
        {"role_id": 3, "name": "Нет доступа", "permissions": []},
    ],
    "lines": [
        {
            "line_id": 400300001,
            "number": "74951234567",
            "name": "Москва, основной",
            "comment": "Main office number",
            "region": "77",
            "schema_id": 400400001,
            "schema_name": "Входящие в рабочее время",
        },
        {
            "line_id": 400300002,
            "number": "78001234567",
            "name": "8-800",
            "comment": "",
            "region": "toll-free",
            "schema_id": 400400001,
            "schema_name": "Входящие в рабочее время",
        },
    ],
    "users": [
        {
            "user_id": 400100101,
            "name": "Анна Смирнова",
            "extension": "101",
            "email": "anna.smirnova@example.com",
            "department": "Продажи",
            "position": "Руководитель отдела продаж",
            "mobile": "79161234501",
            "access_role_id": 10453,
            "login": "anna.smirnova@example.com",
            "is_admin": True,
            "sips": [{"id": 400500101, "login": "anna", "domain": DEFAULT_DOMAIN}],
        },
        {
            "user_id": 400100102,
            "name": "Иван Петров",
            "extension": "102",
            "email": "ivan.petrov@example.com",
            "department": "Продажи",
            "position": "Менеджер",
            "mobile": "79161234502",
            "access_role_id": 10451,
            "sips": [
                {"id": 400500102, "login": "ivan.petrov", "domain": DEFAULT_DOMAIN}
            ],
        },
        {
            "user_id": 400100103,
            "name": "Мария Иванова",
            "extension": "103",
            "email": "maria.ivanova@example.com",
            "department": "Продажи",
            "position": "Менеджер",
            "mobile": "79161234503",
            "access_role_id": 3,
            "sips": [{"id": 400500103, "login": "maria", "domain": DEFAULT_DOMAIN}],
        },
        {
            "user_id": 400100104,
            "name": "Пётр Соколов",
            "extension": "104",
            "email": "petr.sokolov@example.com",
            "department": "Поддержка",
            "position": "Инженер",
            "mobile": "",
            "access_role_id": 3,
            "sips": [],
        },
    ],
    "groups": [
        {
            "id": 400200001,
            "name": "Отдел продаж",
            "description": "Sales queue",
            "extension": "900",
            "line_id": 400300001,
            "operators": [400100101, 400100102, 400100103],
        },
        {
            "id": 400200002,
            "name": "Поддержка",
            "description": "",
            "extension": "901",
            "line_id": 400300002,
            "operators": [400100104],
        },
    ],
}


def opaque_id(*parts):
    """An ID shaped like Mango's: base64 of colon-joined numbers, without '/' or '+'.

    Recording IDs travel inside URL paths (§4.1.2), where '/' would split them.
    """
    raw = ":".join(str(p) for p in parts)
    encoded = base64.b64encode(raw.encode()).decode()
    suffix = 0
    while "/" in encoded or "+" in encoded:
        suffix += 1
        encoded = base64.b64encode(f"{raw}:{suffix}".encode()).decode()
    return encoded


def _without_password(sip):
    """SIP passwords are write-only in Mango (no API returns them); so here too."""
    return {k: v for k, v in sip.items() if k != "password"}


class PbxState:
    """In-memory PBX. Mutate only while holding ``lock``."""

    def __init__(self, seed=None):
        self.lock = threading.RLock()
        self.load(seed)

    def load(self, seed=None):
        seed = copy.deepcopy(DEFAULT_SEED if seed is None else seed)
        with self.lock:
            self.seed_data = copy.deepcopy(seed)
            self.product_id = int(seed.get("product_id", DEFAULT_PRODUCT_ID))
            self.balance = float(seed.get("balance", 0.0))
            self.currency = seed.get("currency", "RUB")
            self.employee_limit = seed.get("employee_limit")
            self.pbx_services_enabled = bool(seed.get("pbx_services_enabled", True))
            self.recording_links_enabled = bool(
                seed.get("recording_links_enabled", True)
            )
            self.domains = list(seed.get("domains") or [DEFAULT_DOMAIN])
            self.roles = list(seed.get("roles") or DEFAULT_SEED["roles"])
            self.lines = [dict(line) for line in seed.get("lines", [])]
            self.users = {}
            self.sips = {}
            self.groups = {}
            self.recordings = {}
            self.calls = []
            self.live_calls = {}
            self.stats_requests = {}
            self.file_tokens = {}
            self.removed_users = {}
            self._ids = itertools.count(1)
            self._next_user_id = 400100900
            self._next_sip_id = 400500900
            self._next_group_id = 400200900
            for user in seed.get("users", []):
                self._add_seed_user(user)
            for group in seed.get("groups", []):
                self._add_seed_group(group)

    # ---- seeding -------------------------------------------------------------------
    def _add_seed_user(self, data):
        user_id = int(data.get("user_id") or self.new_user_id())
        user = {
            "user_id": user_id,
            "name": data.get("name", f"User {user_id}"),
            "extension": str(data.get("extension", "")),
            "email": data.get("email", ""),
            "department": data.get("department", ""),
            "position": data.get("position", ""),
            "mobile": data.get("mobile", ""),
            "access_role_id": int(data.get("access_role_id", 3)),
            "login": data.get("login", ""),
            "use_status": int(data.get("use_status", 0)),
            "use_cc_numbers": int(data.get("use_cc_numbers", 0)),
            "dial_alg": int(data.get("dial_alg", 1)),
            "line_id": data.get("line_id", ""),
            "trunk_number_id": data.get("trunk_number_id", ""),
            "outgoingline": data.get(
                "outgoingline", self.lines[0]["number"] if self.lines else ""
            ),
            "is_admin": bool(data.get("is_admin", False)),
            "is_robot": bool(data.get("is_robot", False)),
            "numbers": [dict(n) for n in data.get("numbers", [])],
        }
        self.users[user_id] = user
        for sip in data.get("sips", []):
            self.add_sip(
                user_id,
                sip["login"],
                sip["domain"],
                sip.get("password", ""),
                sip.get("description", ""),
                sip.get("id"),
            )
        if user["mobile"] and not any(
            n.get("protocol") == "tel" for n in user["numbers"]
        ):
            user["numbers"].append(
                self._number(user["mobile"], "tel", len(user["numbers"]) + 1)
            )
        return user

    def _add_seed_group(self, data):
        group_id = int(data.get("id") or self.new_group_id())
        operators = []
        for op in data.get("operators", []):
            user = (
                self.user_by_extension(str(op))
                if isinstance(op, str)
                else self.users.get(int(op))
            )
            if user:
                operators.append(user["user_id"])
        self.groups[group_id] = {
            "id": group_id,
            "name": data.get("name", f"Group {group_id}"),
            "description": data.get("description", ""),
            "extension": str(data.get("extension", "")),
            "dial_alg_group": int(data.get("dial_alg_group", 1)),
            "dial_alg_users": int(data.get("dial_alg_users", 1)),
            "auto_redirect": int(data.get("auto_redirect", 0)),
            "auto_dial": int(data.get("auto_dial", 0)),
            "line_id": data.get("line_id", ""),
            "use_dynamic_ivr": 0,
            "use_dynamic_seq_num": 0,
            "melody_id": data.get("melody_id", 0),
            "operators": operators,
        }

    # ---- ids -----------------------------------------------------------------------
    def next_serial(self):
        return next(self._ids)

    def new_user_id(self):
        self._next_user_id += 1
        while self._next_user_id in self.users:
            self._next_user_id += 1
        return self._next_user_id

    def new_sip_id(self):
        self._next_sip_id += 1
        while self._next_sip_id in self.sips:
            self._next_sip_id += 1
        return self._next_sip_id

    def new_group_id(self):
        self._next_group_id += 1
        while self._next_group_id in self.groups:
            self._next_group_id += 1
        return self._next_group_id

    # ---- lookups -------------------------------------------------------------------
    def user_by_extension(self, extension):
        extension = str(extension)
        for user in self.users.values():
            if user["extension"] == extension:
                return user
        return None

    def group_by_extension(self, extension):
        extension = str(extension)
        for group in self.groups.values():
            if group["extension"] and group["extension"] == extension:
                return group
        return None

    def extension_taken(self, extension, except_user_id=None):
        user = self.user_by_extension(extension)
        if user and user["user_id"] != except_user_id:
            return True
        return self.group_by_extension(extension) is not None

    def line_by_number(self, number):
        for line in self.lines:
            if str(line["number"]) == str(number) or line.get("name") == number:
                return line
        return None

    def line_by_id(self, line_id):
        for line in self.lines:
            if str(line["line_id"]) == str(line_id):
                return line
        return None

    def role_ids(self):
        return {int(r["role_id"]) for r in self.roles}

    def groups_of(self, user_id):
        return [g["id"] for g in self.groups.values() if user_id in g["operators"]]

    def sips_of(self, user_id):
        return [s for s in self.sips.values() if s["user_id"] == user_id]

    def sip_uri(self, user):
        sips = self.sips_of(user["user_id"])
        if sips:
            return f"sip:{sips[0]['login']}@{sips[0]['domain']}"
        if user.get("mobile"):
            return user["mobile"]
        return f"sip:user{user['user_id']}@{self.domains[0]}"

    # ---- mutations -----------------------------------------------------------------
    @staticmethod
    def _number(number, protocol, order):
        return {
            "number": number,
            "protocol": protocol,
            "order": order,
            "wait_sec": 20,
            "status": "on",
            "schedule": [],
        }

    def add_sip(self, user_id, login, domain, password="", description="", sip_id=None):
        sip_id = int(sip_id or self.new_sip_id())
        self.sips[sip_id] = {
            "id": sip_id,
            "user_id": user_id,
            "login": login,
            "domain": domain,
            "password": password,
            "description": description or "",
        }
        user = self.users[user_id]
        user["numbers"].append(
            self._number(f"sip:{login}@{domain}", "sip", len(user["numbers"]) + 1)
        )
        return sip_id

    def remove_sip(self, sip_id):
        sip = self.sips.pop(sip_id)
        user = self.users.get(sip["user_id"])
        if user:
            uri = f"sip:{sip['login']}@{sip['domain']}"
            user["numbers"] = [
                n for n in user["numbers"] if n["number"] not in (uri, uri[4:])
            ]
        return sip

    def rename_sip(self, sip_id, login, domain):
        sip = self.sips[sip_id]
        old = f"sip:{sip['login']}@{sip['domain']}"
        sip["login"], sip["domain"] = login, domain
        user = self.users.get(sip["user_id"])
        for number in user["numbers"] if user else []:
            if number["number"] in (old, old[4:]):
                number["number"] = f"sip:{login}@{domain}"

    def remove_user(self, user_id):
        user = self.users.pop(user_id)
        for sip_id in [s["id"] for s in self.sips_of(user_id)]:
            self.sips.pop(sip_id)
        for group in self.groups.values():
            if user_id in group["operators"]:
                group["operators"].remove(user_id)
        self.removed_users[user_id] = user
        return user

    # ---- dumps ---------------------------------------------------------------------
    def to_dict(self):
        with self.lock:
            return {
                "product_id": self.product_id,
                "balance": self.balance,
                "currency": self.currency,
                "employee_limit": self.employee_limit,
                "pbx_services_enabled": self.pbx_services_enabled,
                "recording_links_enabled": self.recording_links_enabled,
                "domains": list(self.domains),
                "roles": copy.deepcopy(self.roles),
                "lines": copy.deepcopy(self.lines),
                "users": [
                    dict(
                        copy.deepcopy(u),
                        sips=[_without_password(s) for s in self.sips_of(u["user_id"])],
                        groups=self.groups_of(u["user_id"]),
                    )
                    for u in self.users.values()
                ],
                "groups": copy.deepcopy(list(self.groups.values())),
                "recordings": copy.deepcopy(list(self.recordings.values())),
                "calls": copy.deepcopy(self.calls),
                "live_calls": sorted(self.live_calls),
            }
