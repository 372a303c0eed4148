import ipaddress
import logging
import re
import ssl
from urllib.parse import urlsplit

import requests

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from mango_office import errors as mango_errors
from mango_office.client import DEFAULT_BASE_URL, MangoClient

_logger = logging.getLogger(__name__)

# Source addresses of Mango's webhooks (reference §2.1, DOC2026 §1.2 and §3.1.1,
# updated 22.04.2025; 81.88.80.34 was withdrawn).
MANGO_WEBHOOK_SOURCE_IPS = (
    "81.88.80.132",
    "81.88.80.133",
    "81.88.82.36",
    "81.88.82.44",
    "81.88.82.45",
)

# Outcomes of the connection test (mango.account.connection_result), worded by
# MangoAccount._mango_outcome_message; "recorded_text" holds a sentence worded
# before outcomes were codes (migrations/1.1.0).
CONNECTION_RESULTS = (
    "ok",
    "bad_signature",
    "unknown_key",
    "locked_out",
    "certificate",
    "unreachable",
    "rate_limited",
    "refused",
    "not_mango",
    "failed",
    "recorded_text",
)

# Mango's own allowlist syntax accepts "*" and "a-b" ranges next to plain
# addresses; accepting the same spellings lets admins paste their LK list here.
_IP_ENTRY_SEPARATORS = re.compile(r"[\s,;]+")


def parse_allowed_ips(text):
    """Networks described by an allowlist text.

    Entries are separated by new lines, spaces, commas or semicolons; ``#`` starts a
    comment. An entry is an address (``81.88.80.132``), a network
    (``81.88.82.0/24``), a range (``81.88.80.130-81.88.80.140``) or an IPv4
    address with ``*`` in its trailing octets (``81.88.82.*``).

    :param str text: the allowlist as typed by the administrator
    :return: networks, in the order given
    :rtype: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    :raise ValueError: with the offending entry as its only argument
    """
    networks = []
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0]
        for entry in _IP_ENTRY_SEPARATORS.split(line):
            if entry:
                networks.extend(_parse_ip_entry(entry))
    return networks


def _parse_ip_entry(entry):
    try:
        if "*" in entry:
            octets = entry.split(".")
            wildcards = len(octets) - next(
                (i for i, octet in enumerate(octets) if octet == "*"), len(octets)
            )
            if len(octets) != 4 or any(o != "*" for o in octets[4 - wildcards :]):
                raise ValueError(entry)
            base = ".".join(octets[: 4 - wildcards] + ["0"] * wildcards)
            return [ipaddress.IPv4Network(f"{base}/{32 - 8 * wildcards}")]
        if "-" in entry:
            first, last = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
            if first.version != last.version or first > last:
                raise ValueError(entry)
            return list(ipaddress.summarize_address_range(first, last))
        return [ipaddress.ip_network(entry, strict=False)]
    except ValueError as error:
        raise ValueError(entry) from error


class MangoAccount(models.Model):
    _name = "mango.account"
    _description = "Mango Office account"
    _inherit = "mail.thread"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, default="Mango Office", tracking=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
        tracking=True,
    )
    operator = fields.Selection(
        [("mango", "Mango Office")],
        required=True,
        default="mango",
        help="The cloud PBX provider behind this account.",
    )
    api_base_url = fields.Char(
        string="API address",
        required=True,
        default=DEFAULT_BASE_URL,
        tracking=True,
        help="Address of Mango's virtual PBX API. Change it only for a test server "
        "or when Mango support tells you to.",
    )
    # The secrets are stored in clear because every request is signed with them;
    # they are only ever written through the *_input fields below, so the browser
    # never receives them back.
    api_key = fields.Char(
        string="API key",
        groups="base.group_system",
        copy=False,
        index="btree_not_null",
        help="Unique code of the virtual PBX (Mango cabinet → Integrations → "
        "API connector).",
    )
    api_salt = fields.Char(
        string="API salt",
        groups="base.group_system",
        copy=False,
        help="Signing key of the virtual PBX (Mango cabinet → Integrations → "
        "API connector). Never sent over the network.",
    )
    api_key_input = fields.Char(
        string="New API key",
        groups="base.group_system",
        compute="_compute_api_inputs",
        inverse="_inverse_api_inputs",
        help="Type or paste the key to replace the saved one; leave empty to keep it.",
    )
    api_salt_input = fields.Char(
        string="New API salt",
        groups="base.group_system",
        compute="_compute_api_inputs",
        inverse="_inverse_api_inputs",
        help="Type or paste the salt to replace the saved one; leave empty to keep it.",
    )
    api_key_hint = fields.Char(
        string="Saved API key",
        groups="base.group_system",
        compute="_compute_api_key_hint",
    )
    credentials_set = fields.Boolean(
        string="Credentials saved",
        compute="_compute_credentials_set",
        compute_sudo=True,
    )
    verify_ssl = fields.Boolean(
        string="Check the server certificate",
        default=True,
        tracking=True,
        help="Turn off only for a test server with a self-signed certificate: "
        "without the check, anyone between Odoo and the server can read the calls.",
    )
    request_timeout = fields.Integer(
        string="Request timeout (s)",
        default=15,
        help="How long Odoo waits for an answer from the API.",
    )
    ip_filter_mode = fields.Selection(
        [
            ("any", "Any address (free access)"),
            ("list", "Only the addresses listed"),
        ],
        string="Accept events from",
        required=True,
        default="list",
        tracking=True,
        help="Events must carry a valid signature in any case. The list adds a "
        "check of the sender's address; behind a reverse proxy, start Odoo with "
        "--proxy-mode so the real address is seen.",
    )
    allowed_ips = fields.Text(
        string="Allowed addresses",
        default="\n".join(MANGO_WEBHOOK_SOURCE_IPS),
        help="One entry per line (or separated by commas): an address, a network "
        "such as 81.88.82.0/24, a range such as 81.88.80.130-81.88.80.140 or "
        "81.88.82.*. The default list holds the addresses Mango documents as the "
        "sources of its events.",
    )
    webhook_base_url = fields.Char(
        string="Event address",
        compute="_compute_webhook_base_url",
        help="Paste this address into Mango's cabinet → Integrations → API "
        "connector → external system address.",
    )
    webhook_url_warning = fields.Char(compute="_compute_webhook_base_url")
    line_ids = fields.One2many("mango.line", "account_id", string="Lines")
    line_count = fields.Integer(compute="_compute_line_count")
    default_line_id = fields.Many2one(
        "mango.line",
        string="Default outgoing line",
        check_company=True,
        ondelete="set null",
        domain="[('account_id', '=', id), ('usable_outgoing', '=', True)]",
        tracking=True,
        help="Number shown to the people called from Odoo, unless a user has "
        "their own line.",
    )
    default_line_number = fields.Char(
        string="Default line number",
        compute="_compute_default_line_number",
        store=True,
        help="Value sent to Mango as line_number of click-to-call commands.",
    )
    connection_state = fields.Selection(
        [
            ("unknown", "Not checked"),
            ("ok", "Connected"),
            ("failed", "Failed"),
        ],
        string="Connection",
        default="unknown",
        readonly=True,
        copy=False,
    )
    connection_checked_at = fields.Datetime(
        string="Last checked", readonly=True, copy=False
    )
    # The outcome is kept as a code and its language-neutral details, and worded
    # when read: each reader sees it in their own language, not in the language
    # of whoever pressed the button.
    connection_result = fields.Char(  # one of CONNECTION_RESULTS
        string="Last check outcome", readonly=True, copy=False
    )
    connection_result_params = fields.Json(
        string="Last check details", readonly=True, copy=False
    )
    connection_message = fields.Char(
        string="Last check", compute="_compute_connection_message"
    )
    balance = fields.Float(readonly=True, copy=False, digits=(16, 2))
    balance_currency = fields.Char(readonly=True, copy=False)

    # ------------------------------------------------------------------
    # Compute and inverse methods
    # ------------------------------------------------------------------

    def _compute_api_inputs(self):
        for account in self:
            account.api_key_input = False
            account.api_salt_input = False

    def _inverse_api_inputs(self):
        for account in self:
            values = {}
            for input_name, field_name in (
                ("api_key_input", "api_key"),
                ("api_salt_input", "api_salt"),
            ):
                value = (account[input_name] or "").strip()
                if value and value != account[field_name]:
                    values[field_name] = value
            if values:
                account.write(values)
                account.message_post(
                    body=_(
                        "API credentials changed: %(fields)s.",
                        fields=", ".join(
                            self._fields[name].get_description(self.env)["string"]
                            for name in values
                        ),
                    ),
                    subtype_xmlid="mail.mt_note",
                )
        # The inputs were cached with the clear values by the write; drop them so
        # the record read back after saving carries nothing secret.
        self.invalidate_recordset(["api_key_input", "api_salt_input"])

    @api.depends("api_key")
    def _compute_api_key_hint(self):
        for account in self:
            key = account.api_key or ""
            account.api_key_hint = f"••••••••{key[-4:]}" if len(key) > 8 else False

    @api.depends("api_key", "api_salt")
    def _compute_credentials_set(self):
        for account in self:
            account.credentials_set = bool(account.api_key and account.api_salt)

    def _compute_webhook_base_url(self):
        base_url = (
            self.env["ir.config_parameter"].sudo().get_param("web.base.url") or ""
        ).rstrip("/")
        host = (urlsplit(base_url).hostname or "").lower()
        if not base_url:
            warning = _("Set the web.base.url system parameter first.")
        elif host in ("localhost", "127.0.0.1", "::1") or host.endswith(".local"):
            warning = _(
                "This address is not reachable from Mango's servers: open Odoo "
                "under its public address and save the settings again."
            )
        elif not base_url.startswith("https://"):
            warning = _(
                "Mango will send call data unencrypted over HTTP: publish Odoo "
                "over HTTPS (TLS 1.2)."
            )
        else:
            warning = False
        for account in self:
            account.webhook_base_url = f"{base_url}/mango" if base_url else False
            account.webhook_url_warning = warning

    @api.depends("connection_result", "connection_result_params")
    @api.depends_context("lang")
    def _compute_connection_message(self):
        for account in self:
            account.connection_message = account._mango_outcome_message(
                account.connection_result, account.connection_result_params
            )

    @api.depends("line_ids")
    def _compute_line_count(self):
        for account in self:
            account.line_count = len(account.line_ids)

    @api.depends("default_line_id.number", "default_line_id.name")
    def _compute_default_line_number(self):
        for account in self:
            account.default_line_number = account.default_line_id._mango_line_number()

    # ------------------------------------------------------------------
    # Constraints
    # ------------------------------------------------------------------

    @api.constrains("company_id", "active")
    def _check_one_account_per_company(self):
        for account in self.filtered("active"):
            other = self.sudo().search(
                [
                    ("company_id", "=", account.company_id.id),
                    ("id", "!=", account.id),
                ],
                limit=1,
            )
            if other:
                raise ValidationError(
                    _(
                        "The company %(company)s already has an active Mango account "
                        "(%(account)s): archive it before adding another one.",
                        company=account.company_id.display_name,
                        account=other.display_name,
                    )
                )

    @api.constrains("api_key", "api_salt")
    def _check_credentials(self):
        for account in self.sudo():
            for field_name in ("api_key", "api_salt"):
                value = account[field_name]
                if value and re.search(r"\s", value):
                    raise ValidationError(
                        _(
                            "The %(field)s must not contain spaces or line breaks: "
                            "copy it again from Mango's cabinet.",
                            field=self._fields[field_name].get_description(self.env)[
                                "string"
                            ],
                        )
                    )
            if account.active and account.api_key:
                twin = self.sudo().search(
                    [("api_key", "=", account.api_key), ("id", "!=", account.id)],
                    limit=1,
                )
                if twin:
                    raise ValidationError(
                        _(
                            "The Mango account %(account)s already uses this API "
                            "key: events could not tell the two accounts apart.",
                            account=twin.display_name,
                        )
                    )

    @api.constrains("api_base_url")
    def _check_api_base_url(self):
        for account in self:
            parts = urlsplit(account.api_base_url or "")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValidationError(
                    _(
                        "The API address “%(url)s” is not a web address; Mango's is "
                        "%(default)s.",
                        url=account.api_base_url,
                        default=DEFAULT_BASE_URL,
                    )
                )

    @api.constrains("request_timeout")
    def _check_request_timeout(self):
        for account in self:
            if not 1 <= account.request_timeout <= 300:
                raise ValidationError(
                    _("The request timeout must be between 1 and 300 seconds.")
                )

    @api.constrains("ip_filter_mode", "allowed_ips")
    def _check_allowed_ips(self):
        for account in self:
            try:
                networks = parse_allowed_ips(account.allowed_ips)
            except ValueError as error:
                raise ValidationError(
                    _(
                        "“%(entry)s” is not an IP address, network or range. Write one "
                        "entry per line, for example 81.88.80.132, 81.88.82.0/24, "
                        "81.88.80.130-81.88.80.140 or 81.88.82.*.",
                        entry=error.args[0],
                    )
                ) from error
            if account.ip_filter_mode == "list" and not networks:
                raise ValidationError(
                    _(
                        "List at least one address to accept events from, or accept "
                        "events from any address."
                    )
                )

    @api.constrains("default_line_id")
    def _check_default_line(self):
        for account in self:
            line = account.default_line_id
            if line and line.account_id != account:
                raise ValidationError(
                    _(
                        "The line %(line)s belongs to another Mango account.",
                        line=line.display_name,
                    )
                )
            if line and not line.usable_outgoing:
                raise ValidationError(
                    _(
                        "The line %(line)s cannot place outgoing calls (Mango "
                        "answers 3124 for it): choose another default line.",
                        line=line.display_name,
                    )
                )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("api_base_url"):
                vals["api_base_url"] = vals["api_base_url"].strip().rstrip("/")
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("api_base_url"):
            vals["api_base_url"] = vals["api_base_url"].strip().rstrip("/")
        # A connection test says nothing about another address or other secrets;
        # the settings rewrite every field on save, so only real changes count.
        watched = [
            name
            for name in ("api_base_url", "verify_ssl", "api_key", "api_salt")
            if name in vals
        ]
        stale = self.browse()
        if watched and "connection_state" not in vals:
            stale = self.sudo().filtered(
                lambda account: any(
                    (account[name] or False) != (vals[name] or False)
                    for name in watched
                )
            )
        result = super().write(vals)
        if stale:
            stale.write(
                {
                    "connection_state": "unknown",
                    "connection_result": False,
                    "connection_result_params": False,
                }
            )
        return result

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_mango_test_connection(self):
        """Check the address, key and salt against the API, as Mango's own
        "check connection" does, and report the outcome as a notification.

        Asks for the balance first (the lightest signed request), then the lines,
        which proves the account may read its configuration; the lines are stored on
        the way. Never raises for a Mango error: the notification names the cause.

        :return: a ``display_notification`` client action
        """
        self.ensure_one()
        self.check_access("write")
        if not self.credentials_set:
            return self._mango_notification(
                _(
                    "Enter the API key and salt first (Mango cabinet → Integrations → "
                    "API connector)."
                ),
                "warning",
            )
        try:
            client = self._mango_client()
            balance = client.balance()
            lines = client.incoming_lines()
        except ValueError as error:
            # The client refuses a configuration it cannot use before sending.
            return self._mango_notification(str(error), "danger", sticky=True)
        except mango_errors.MangoError as error:
            code, params = self._mango_error_outcome(error)
            _logger.info(
                "Mango connection test failed for account %s: %s (code %s)",
                self.id,
                type(error).__name__,
                error.code,
            )
            self.sudo().write(
                {
                    "connection_state": "failed",
                    "connection_checked_at": fields.Datetime.now(),
                    "connection_result": code,
                    "connection_result_params": params,
                }
            )
            return self._mango_notification(
                self._mango_outcome_message(code, params), "danger", sticky=True
            )
        self._mango_sync_lines(lines)
        self.sudo().write(
            {
                "connection_state": "ok",
                "connection_checked_at": fields.Datetime.now(),
                "connection_result": "ok",
                "connection_result_params": {},
                "balance": _float_or_zero(balance.get("balance")),
                "balance_currency": balance.get("currency") or False,
            }
        )
        _logger.info("Mango connection test succeeded for account %s", self.id)
        return self._mango_notification(
            self._mango_outcome_message("ok", {}), "success"
        )

    def action_mango_refresh_lines(self):
        """Reload the account's lines from Mango (``incominglines``).

        :return: a ``display_notification`` client action that reloads the view
        """
        self.ensure_one()
        self.check_access("write")
        if not self.credentials_set:
            raise UserError(
                _(
                    "Enter the API key and salt first (Mango cabinet → Integrations → "
                    "API connector)."
                )
            )
        try:
            lines = self._mango_client().incoming_lines()
        except mango_errors.MangoError as error:
            raise UserError(self._mango_error_message(error)) from error
        created, updated, archived = self._mango_sync_lines(lines)
        return self._mango_notification(
            _(
                "%(total)s lines in Mango: %(created)s new, %(updated)s updated, "
                "%(archived)s archived.",
                total=len(lines),
                created=created,
                updated=updated,
                archived=archived,
            ),
            "success",
        )

    def action_mango_clear_credentials(self):
        """Forget the saved key and salt, e.g. after they leaked."""
        self.ensure_one()
        # Not sudo: only those allowed to write the secrets may forget them.
        self.write({"api_key": False, "api_salt": False})
        self.message_post(
            body=_("API credentials cleared."), subtype_xmlid="mail.mt_note"
        )
        return True

    def action_open_lines(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "mango_telephony.mango_line_action"
        )
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------

    @api.model
    def _mango_account_for_company(self, company=None):
        """The active account of ``company`` (the current company by default).

        :rtype: mango.account (empty when the company has none)
        """
        company = company or self.env.company
        return self.search([("company_id", "=", company.id)], limit=1)

    @api.model
    def _mango_account_from_api_key(self, api_key):
        """The active account an incoming event belongs to, found by the
        ``vpbx_api_key`` it carries; the signature must still be checked.

        :rtype: mango.account, sudoed (empty when unknown)
        """
        if not api_key:
            return self.sudo().browse()
        return self.sudo().search([("api_key", "=", api_key)], limit=1)

    def _mango_client(self):
        """The API client of this account: the only place the secrets leave the
        database, so callers never need read access to them.

        :rtype: mango_office.client.MangoClient
        :raise UserError: when the key or the salt is missing
        """
        self.ensure_one()
        account = self.sudo()
        if not (account.api_key and account.api_salt):
            raise UserError(
                _(
                    "The Mango account %(account)s has no API key or salt yet.",
                    account=account.display_name,
                )
            )
        base_url = account.api_base_url or DEFAULT_BASE_URL
        return MangoClient(
            account.api_key,
            account.api_salt,
            base_url=base_url,
            verify=account.verify_ssl,
            timeout=account.request_timeout or 15,
            # Mango's per-product limits and its lockout hold for all of Odoo: the
            # limiter lives in the database, shared by every worker and instance.
            rate_limiter=self.env["mango.rate.limit"]._mango_limiter(
                base_url, account.api_key
            ),
        )

    def _mango_ip_allowed(self, address):
        """Whether an event may come from ``address`` under this account's filter.

        :param str address: the sender's address (``request.httprequest.remote_addr``)
        :rtype: bool
        """
        self.ensure_one()
        if self.ip_filter_mode == "any":
            return True
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        try:
            networks = parse_allowed_ips(self.allowed_ips)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in networks)

    def _mango_sync_lines(self, lines):
        """Store the lines listed by ``incominglines``: new ones are created,
        known ones updated, vanished ones archived (calls may still refer to them).

        :param list[dict] lines: the ``lines`` of Mango's answer
        :return: counts of created, updated and archived lines
        :rtype: tuple[int, int, int]
        """
        self.ensure_one()
        Line = self.env["mango.line"].sudo().with_context(active_test=False)
        existing = {
            line.line_id: line for line in Line.search([("account_id", "=", self.id)])
        }
        created = updated = 0
        seen = set()
        to_create = []
        for data in lines:
            line_id = str(data.get("line_id") or "").strip()
            if not line_id or line_id in seen:
                continue
            seen.add(line_id)
            values = {
                "number": str(data.get("number") or "").strip() or False,
                "name": str(data.get("name") or "").strip() or False,
                "comment": str(data.get("comment") or "").strip() or False,
                "region": str(data.get("region") or "").strip() or False,
                "schema_name": str(data.get("schema_name") or "").strip() or False,
                "active": True,
            }
            line = existing.get(line_id)
            if line is None:
                to_create.append({"account_id": self.id, "line_id": line_id, **values})
                created += 1
            elif any(line[name] != value for name, value in values.items()):
                line.write(values)
                updated += 1
        if to_create:
            Line.create(to_create)
        vanished = Line.browse(
            [
                line.id
                for line_id, line in existing.items()
                if line_id not in seen and line.active
            ]
        )
        vanished.write({"active": False})
        if self.default_line_id in vanished:
            self.sudo().default_line_id = False
        return created, updated, len(vanished)

    def _mango_error_message(self, error):
        """A sentence naming the cause of a Mango failure and what to do about it,
        in the current user's language.

        :param mango_office.errors.MangoError error: what the client raised
        :rtype: str
        """
        return self._mango_outcome_message(*self._mango_error_outcome(error))

    def _mango_error_outcome(self, error):
        """The cause of a Mango failure as ``(code, params)``, in no language:
        what a record keeps, to be worded for each reader by
        :meth:`_mango_outcome_message`.

        :param mango_office.errors.MangoError error: what the client raised
        :return: a code of ``CONNECTION_RESULTS`` and a JSON-safe dict
        """
        url = self.api_base_url or DEFAULT_BASE_URL
        if isinstance(error, mango_errors.MangoAuthError):
            return ("bad_signature" if error.code == 3102 else "unknown_key"), {}
        if isinstance(error, mango_errors.MangoLockedOut):
            return "locked_out", {}
        if isinstance(error, mango_errors.MangoCertificateError):
            return "certificate", {"url": url, **self._mango_transport_cause(error)}
        if isinstance(error, mango_errors.MangoTransportError):
            return "unreachable", {"url": url, **self._mango_transport_cause(error)}
        if isinstance(error, mango_errors.MangoRateLimited):
            return "rate_limited", {
                "code": error.code or error.http_status,
                "meaning": str(getattr(error, "meaning", error)),
            }
        if isinstance(error, mango_errors.MangoResultError):
            return "refused", {"code": error.code, "meaning": error.meaning}
        if isinstance(error, mango_errors.MangoProtocolError):
            return "not_mango", {"url": url, "reason": str(error)}
        return "failed", {"reason": str(error)}

    def _mango_outcome_message(self, code, params):
        """Word an outcome of :meth:`_mango_error_outcome` (or ``ok``) in the
        current language.

        :param str code: one of ``CONNECTION_RESULTS``, or False (no test yet)
        :param dict params: the details the code needs
        :rtype: str | bool
        """
        params = params if isinstance(params, dict) else {}
        url = params.get("url") or self.api_base_url or DEFAULT_BASE_URL
        reason = params.get("reason") or ""
        if "timeout" in params:
            reason = _(
                "no answer within %(seconds)s seconds", seconds=params["timeout"]
            )
        if not code:
            return False
        if code == "ok":
            return _("Connection to the server was established successfully")
        if code == "bad_signature":
            return _("Mango refused the signature (3102): check the salt.")
        if code == "unknown_key":
            return _("Mango does not know this API key (3105): check the key.")
        if code == "locked_out":
            return _(
                "Mango has locked the API for two minutes after repeated invalid "
                "requests (HTTP 401): check the key and salt, then try again after "
                "two minutes."
            )
        if code == "certificate":
            return _(
                "The certificate of %(url)s could not be verified (%(reason)s): fix "
                "the certificate, or turn off the certificate check for a test "
                "server.",
                url=url,
                reason=reason,
            )
        if code == "unreachable":
            return _(
                "The server %(url)s cannot be reached (%(reason)s): check the API "
                "address and that Odoo's server may connect to it.",
                url=url,
                reason=reason,
            )
        if code == "rate_limited":
            return _(
                "Mango asks to slow down (%(code)s): %(meaning)s. Try again in a few "
                "seconds.",
                code=params.get("code"),
                meaning=params.get("meaning"),
            )
        if code == "refused":
            return _(
                "Mango refused the request (%(code)s): %(meaning)s.",
                code=params.get("code"),
                meaning=params.get("meaning"),
            )
        if code == "not_mango":
            return _(
                "The server %(url)s does not answer like Mango's API (%(reason)s): "
                "check the API address.",
                url=url,
                reason=reason,
            )
        if code == "recorded_text":
            # Worded before outcomes were kept as codes (see the migration).
            return params.get("text") or False
        return _("Mango request failed: %(reason)s", reason=reason or code)

    def _mango_transport_cause(self, error):
        """The root cause of a network failure, in no language: ``{"timeout":
        seconds}`` or ``{"reason": "Connection refused"}`` (the system's own
        words, as the server's log has them)."""
        seen = set()
        pending = [error]
        while pending:
            current = pending.pop(0)
            if id(current) in seen:
                continue
            seen.add(id(current))
            if isinstance(current, ssl.SSLCertVerificationError):
                return {
                    "reason": current.verify_message or current.reason or str(current)
                }
            if isinstance(current, requests.exceptions.Timeout | TimeoutError):
                return {"timeout": self.request_timeout}
            if isinstance(current, OSError) and current.strerror:
                return {"reason": current.strerror}
            # urllib3 wraps the cause in .reason or in the arguments.
            pending.extend(
                nested
                for nested in (
                    getattr(current, "reason", None),
                    *current.args,
                    current.__cause__,
                    current.__context__,
                )
                if isinstance(nested, BaseException)
            )
        return {"reason": str(error)}

    def _mango_notification(self, message, notification_type, sticky=False):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": self.display_name,
                "message": message,
                "type": notification_type,
                "sticky": sticky,
                # Reload so the connection status and the lines shown are current.
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }


def _float_or_zero(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
