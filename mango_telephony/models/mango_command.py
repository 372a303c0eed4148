"""The outbox of commands sent to the PBX, and how each finds its result and call.

Every command we send Mango (``commands/callback`` and ``commands/callback_group``
today) carries our own ``command_id``. Mango answers twice, in any order, by that
id (reference §2.4, §3.1): a ``result/<command>`` event with a result code, and
the events of the call the command started. Both are matched here, once, for
every kind of command; what the command was *for* lives in the model that
delegates to it (``_inherits``), which hears back through two hooks:

* ``_mango_command_refused(code)``: Mango refused the command (no call follows);
* ``_mango_command_linked(calls)``: a call started by the command was folded
  (the first post-fold step, so later steps see what the owner set on it).

A new kind of command is a model inheriting ``mango.command.owner`` with its
``_mango_command_kind`` (added to ``kind``) and those two methods (see
``mango.click.to.call`` and ``mango.callback.attempt`` in mango_callback).
"""

import logging

from odoo import api, fields, models

from mango_office import codes

from ..compat.constraints import table_constraints

_logger = logging.getLogger(__name__)


@table_constraints
class MangoCommand(models.Model):
    _name = "mango.command"
    _description = "Command sent to the PBX"
    _order = "id desc"
    _rec_name = "command_id"

    command_id = fields.Char(
        string="Command ID", required=True, readonly=True, index=True, copy=False
    )
    kind = fields.Selection(
        [("click_to_call", "Click-to-call")],
        required=True,
        readonly=True,
        index=True,
    )
    account_id = fields.Many2one(
        "mango.account", required=True, readonly=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    user_id = fields.Many2one(
        "res.users",
        string="For user",
        readonly=True,
        index=True,
        # Not cascade: a call-back attempt rings its operator, and removing the
        # operator's user must not remove the visitor's attempts.
        ondelete="set null",
        help="The user whose phone the command rings; only they and telephony "
        "administrators see it.",
    )
    sent_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    state = fields.Selection(
        [
            ("sent", "Sent"),
            ("failed", "Refused"),
            ("linked", "Call started"),
        ],
        required=True,
        default="sent",
        readonly=True,
    )
    result_code = fields.Integer(readonly=True, aggregator=None)
    error = fields.Char(readonly=True)
    call_id = fields.Many2one(
        "mango.call", readonly=True, index="btree_not_null", ondelete="set null"
    )

    _sql_constraints = (
        ("command_id_uniq", "unique(command_id)", "A command is sent once."),
    )

    # ------------------------------------------------------------------
    # Owners: the models that delegate to a command
    # ------------------------------------------------------------------

    def _mango_owners(self):
        """The records (of every delegating model) these commands were sent for."""
        owners = []
        for name, model in self.env.registry.items():
            if "mango.command.owner" in model._inherit_module and not model._abstract:
                field = model._inherits[self._name]
                found = self.env[name].sudo().search([(field, "in", self.ids)])
                if found:
                    owners.append(found)
        return owners

    @api.model
    def _mango_of(self, command_ids, account=None):
        """The commands with these ``command_id`` values (of ``account`` if given)."""
        command_ids = [c for c in command_ids if c]
        if not command_ids:
            return self.browse()
        domain = [("command_id", "in", command_ids)]
        if account:
            domain.append(("account_id", "=", account.id))
        return self.sudo().search(domain)

    # ------------------------------------------------------------------
    # The call a command started
    # ------------------------------------------------------------------

    def _mango_link_calls(self, calls):
        """Record on each command the call (one of ``calls``) it started, then
        tell the owners. Idempotent: a re-fold changes nothing."""
        by_command = {}
        for call in calls.sudo().filtered("command_id"):
            by_command.setdefault(call.command_id, call)
        linked = self.browse()
        for command in self.sudo():
            call = by_command.get(command.command_id)
            if not call:
                continue
            vals = {}
            if not command.call_id:
                vals["call_id"] = call.id
            if command.state != "linked":
                vals["state"] = "linked"
            if vals:
                command.write(vals)
            linked |= command
        for owners in linked._mango_owners():
            owners._mango_command_linked(calls)

    def _mango_link_after_commit(self):
        """Post-commit: when the call was folded before this command was
        committed, the post-fold pipeline could not see it; link it now and
        post the call on the chatter of the record it now belongs to."""
        with self.env.registry.cursor() as cr:
            commands = self.with_env(self.env(cr=cr, su=True)).exists()
            calls = commands.env["mango.call"].search(
                [
                    ("command_id", "in", commands.mapped("command_id")),
                    ("account_id", "in", commands.account_id.ids),
                ]
            )
            if calls:
                commands._mango_link_calls(calls)
                calls._mango_post_on_chatter()

    # ------------------------------------------------------------------
    # Mango's result for a command
    # ------------------------------------------------------------------

    def _mango_refused(self, code, message):
        """The command never reached the PBX or Mango refused it at once (the
        HTTP answer): no result event and no call will follow."""
        self.sudo().write({"state": "failed", "result_code": code, "error": message})

    @api.model
    def _mango_on_result(self, account, command_id, result):
        """Mango's ``result/<command>``: store the code; on refusal, the command
        failed (unless its call already started) and its owner is told.
        Idempotent: the same result delivered twice changes nothing."""
        command = self._mango_of([command_id], account)[:1]
        if not command or result is None or command.result_code == result:
            return command
        success = codes.is_success(result)
        vals = {"result_code": result}
        if not success and command.state != "linked":
            vals.update(state="failed", error=f"{result}: {codes.describe(result)}")
        command.write(vals)
        if not success:
            for owners in command._mango_owners():
                owners._mango_command_refused(result)
        return command


class MangoCommandOwner(models.AbstractModel):
    """What a command was sent for, delegating the command's own fields
    (``command_id``, ``state``, ``result_code``, ``call_id``…) to its
    ``mango.command`` row."""

    _name = "mango.command.owner"
    _description = "Record a PBX command was sent for"
    _inherits = {"mango.command": "mango_command_id"}
    # The owner's value of mango.command.kind
    _mango_command_kind = None

    mango_command_id = fields.Many2one(
        "mango.command",
        string="Command",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            vals.setdefault("kind", self._mango_command_kind)
        return super().create(vals_list)

    def _mango_command_linked(self, calls):
        """``calls`` include the call these owners' commands started."""

    def _mango_command_refused(self, result):
        """Mango refused these owners' commands with ``result`` (no call follows)."""


class MangoCall(models.Model):
    _inherit = "mango.call"

    def _mango_step_link_commands(self, previous):
        """The calls our commands started are linked to them, and each command's
        owner (the click, the call-back attempt) hears of its call: the first
        post-fold step, so that caller identification and the chatter post
        further down use what the owner set (e.g. the record clicked on)."""
        commands = self.env["mango.command"]._mango_of(self.mapped("command_id"))
        if commands:
            commands._mango_link_calls(self)


class MangoEvent(models.Model):
    _inherit = "mango.event"

    def _mango_process_other(self, parsed):
        # A refused command never produces call events, so its result arrives
        # here rather than through a call's fold.
        command_id = getattr(parsed, "command_id", None)
        if getattr(parsed, "kind", None) == "command_result" and command_id:
            self.env["mango.command"]._mango_on_result(
                self.account_id, command_id, parsed.result
            )
        return super()._mango_process_other(parsed)
