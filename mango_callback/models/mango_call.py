"""Website call-back requests followed to their outcome, from the telephony events.

A request's attempt is a PBX command (``commands/callback``): the outbox
(mango_telephony's mango_command.py) links it to the call it produced and hands
it Mango's refusal; the call's outcome is read here, in a post-fold step added
after mango_telephony's own.
"""

from odoo import models


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
            .search([("call_id", "in", calls.ids)])
        )
        by_call = {attempt.call_id: attempt for attempt in attempts}
        for call in calls:
            attempt = by_call.get(call)
            if not attempt:
                continue
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
