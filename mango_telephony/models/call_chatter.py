"""A finished call on its contact's and its lead's chatter, once each.

A salesperson reads a customer's history on the contact or the lead: each
finished call is posted there as a note, by whoever took it, with a link back
to the call. The call remembers where it was posted, so a re-fold, a retried
event or a contact linked later posts nothing twice.
"""

from markupsafe import Markup

from odoo import fields, models

from mango_office.rules import FINISHED_STATUSES


def _format_duration(env, seconds):
    seconds = int(seconds or 0)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return env._("%(h)s h %(m)02d min", h=hours, m=minutes)
    if minutes:
        return env._("%(m)s min %(s)02d s", m=minutes, s=seconds)
    return env._("%(s)s s", s=seconds)


class MangoCall(models.Model):
    _inherit = "mango.call"

    chatter_partner_id = fields.Many2one(
        "res.partner",
        readonly=True,
        copy=False,
        help="Contact whose chatter shows this call.",
    )
    chatter_lead_id = fields.Many2one(
        "crm.lead",
        readonly=True,
        copy=False,
        help="Lead whose chatter shows this call.",
    )

    def _mango_step_post_on_chatter(self, previous):
        self._mango_post_on_chatter()

    def _mango_post_on_chatter(self):
        """Post each finished call once on its contact's and its lead's chatter."""
        for call in self.sudo():
            if call.status not in FINISHED_STATUSES:
                continue
            targets = []
            partner = call.partner_id
            if partner and partner != call.chatter_partner_id:
                targets.append(("chatter_partner_id", partner))
            if call.lead_id and call.lead_id != call.chatter_lead_id:
                targets.append(("chatter_lead_id", call.lead_id))
            if not targets:
                continue
            body = call._mango_chatter_body()
            author = (call.user_id or call.employee_user_id).partner_id
            for field_name, record in targets:
                record.with_context(mail_create_nosubscribe=True).message_post(
                    body=body,
                    message_type="comment",
                    subtype_xmlid="mail.mt_note",
                    author_id=author.id or None,
                )
                call[field_name] = record

    def _mango_chatter_body(self):
        self.ensure_one()
        env = self.env
        direction = dict(self._fields["direction"]._description_selection(env)).get(
            self.direction
        ) or env._("Call")
        status = dict(self._fields["status"]._description_selection(env)).get(
            self.status, ""
        )
        who = (
            (self.user_id or self.employee_user_id).name
            or self.answered_extension
            or (self.employee_extension or env._("nobody"))
        )
        return env._(
            "%(direction)s call, %(status)s — %(number)s — talk %(duration)s, "
            "employee: %(who)s — %(link)s",
            direction=direction,
            status=status.lower(),
            # As people write it (the party, or both colleagues of an internal call).
            number=self._mango_other_party_display() or "",
            duration=_format_duration(env, self.talk_duration),
            who=who,
            link=Markup(self._get_html_link(title=env._("open the call"))),
        )
