"""Website call-back requests followed to their outcome, from the telephony events.

A request's attempt is a PBX command (``commands/callback``) with our
``command_id``: the call it produced arrives through the call log's post-fold
pipeline (a step added after mango_telephony's own), and a refused command,
which never produces a call, through the event worker's other events.
"""

from odoo import models

from mango_office import events as mango_events


class MangoCall(models.Model):
    _inherit = "mango.call"

    def _mango_post_fold_steps(self):
        return [*super()._mango_post_fold_steps(), "_mango_step_follow_callbacks"]

    def _mango_step_follow_callbacks(self, previous):
        """Follow the calls placed for website requests to their outcome."""
        calls = self.filtered("command_id")
        if not calls:
            return
        attempts = (
            self.env["mango.callback.attempt"]
            .sudo()
            .search([("command_id", "in", calls.mapped("command_id"))])
        )
        by_command = {attempt.command_id: attempt for attempt in attempts}
        for call in calls:
            attempt = by_command.get(call.command_id)
            if not attempt:
                continue
            if not attempt.call_id:
                attempt.call_id = call
            request = attempt.request_id
            if request.lead_id and not call.lead_id:
                call.lead_id = request.lead_id
            if call.status == "answered":
                attempt._mango_finish("answered")
            elif call.status in ("missed", "failed"):
                # The fold calls an unanswered outgoing call "failed"; for the
                # visitor it is the same: nobody picked up.
                attempt._mango_finish(
                    "no_answer", call.disconnect_reason_text, call.disconnect_reason
                )


class MangoEvent(models.Model):
    _inherit = "mango.event"

    def _mango_process_other(self, parsed):
        """A refused command never produces a call: its result is the only news."""
        result = super()._mango_process_other(parsed)
        if isinstance(parsed, mango_events.CommandResultEvent) and parsed.command_id:
            attempt = (
                self.env["mango.callback.attempt"]
                .sudo()
                .search([("command_id", "=", parsed.command_id)], limit=1)
            )
            if attempt and parsed.result is not None:
                attempt._mango_on_result(parsed.result)
        return result
