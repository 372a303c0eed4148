"""Extension conflicts in words: what a run line says about a number the directory
asks for that someone else keeps.

The planner settles each conflict by its rule (``mango_office.directory``:
``ExtensionClaim``, ``_Planner.register_claims``) and hands over the facts as
``Held.details``: the number, the people (directory GUID, name, login, DN), the PBX
users, Odoo users and PBX groups that hold it, who kept it and why, and what the
others have instead. A run line stores those facts as JSON and words them when it is
read, so that a run written by the nightly cron reads in each administrator's own
language, and people are named as the links know them now.
"""

import json


class ConflictWording:
    """Words the conflicts of one directory's run lines in ``env``'s language."""

    def __init__(self, env, directory):
        self.env = env
        self.directory = directory
        self._ = env._
        self._links = {}

    # ------------------------------------------------------------ people
    def _link(self, anchor):
        if anchor not in self._links:
            self._links[anchor] = (
                self.env["mango.ldap.link"]
                .sudo()
                .search(
                    [
                        ("directory_id", "=", self.directory.id),
                        ("anchor", "=", anchor),
                    ],
                    limit=1,
                )
                if anchor and self.directory
                else self.env["mango.ldap.link"]
            )
        return self._links[anchor]

    def name_of(self, person):
        """A person's display name: the directory's, else the link's, else the GUID."""
        link = self._link(person.get("anchor"))
        return person.get("name") or link.name or person.get("anchor") or "?"

    def _person(self, person, with_dn=True):
        link = self._link(person.get("anchor"))
        name = self.name_of(person)
        login = person.get("login") or link.login
        dn = person.get("dn") or link.dn
        if login and dn and with_dn:
            return self._("%(name)s (%(login)s, %(dn)s)", name=name, login=login, dn=dn)
        if login:
            return self._("%(name)s (%(login)s)", name=name, login=login)
        return name

    def _holder(self, item):
        kind = item.get("kind")
        if kind == "pbx_user":
            return self._(
                "PBX user %(name)s (%(id)s)",
                name=item.get("name") or "",
                id=item.get("id"),
            )
        if kind == "odoo_user":
            user = (
                self.env["res.users"]
                .sudo()
                .with_context(active_test=False)
                .browse(item.get("id"))
                .exists()
            )
            return self._(
                "Odoo user %(name)s (%(login)s)",
                name=user.name or "",
                login=user.login or item.get("login") or item.get("id"),
            )
        if kind == "pbx_group":
            return self._("PBX group %s", item.get("label"))
        return self._person(item)

    def _got(self, details, person):
        if details.get("planned"):
            return details.get("got")
        # not read this run (a changes-only run): what the person has now
        return self._link(person.get("anchor")).extension or None

    # ----------------------------------------------------------- message
    def message(self, details):
        """The line's message for an ``extension_conflict``'s details."""
        if isinstance(details, str):
            details = json.loads(details)
        _ = self._
        extension = details.get("extension")
        person = details.get("person") or {}
        name = self.name_of(person)
        got = self._got(details, person)
        if got:
            outcome = _(
                "%(person)s has extension %(got)s instead.", person=name, got=got
            )
        else:
            outcome = _("%(person)s has no extension for now.", person=name)
        others = [self._person(o) for o in details.get("others") or ()]
        if details.get("why") == "held_elsewhere":
            holders = [self._holder(h) for h in details.get("holders") or ()]
            parts = [
                _(
                    "Extension %(extension)s from the directory for %(person)s is "
                    "already used by %(holders)s.",
                    extension=extension,
                    person=self._person(person, with_dn=False),
                    holders=", ".join(holders) or "?",
                ),
                outcome,
            ]
            if others:
                parts.append(
                    _(
                        "The directory also gives it to %(others)s.",
                        others=", ".join(others),
                    )
                )
            parts.append(
                _(
                    "Give %(person)s another number in the directory, or free this one.",
                    person=name,
                )
            )
            return " ".join(parts)
        kept_by = details.get("kept_by") or {}
        winner = self.name_of(kept_by)
        people = [self._person(kept_by), self._person(person, with_dn=False), *others]
        why = {
            "holder": _(
                "%(winner)s keeps it: they already have it in Odoo or on the PBX.",
                winner=winner,
            ),
            "pbx_user": _(
                "%(winner)s keeps it: the PBX user who has it is theirs (same e-mail "
                "or name).",
                winner=winner,
            ),
            "odoo_user": _(
                "%(winner)s keeps it: the Odoo user who has it is theirs.",
                winner=winner,
            ),
            "created_first": _(
                "%(winner)s keeps it: their directory entry was created first.",
                winner=winner,
            ),
        }.get(
            details.get("why"),
            _(
                "%(winner)s keeps it: the entries were created in the same second, "
                "so the lower GUID decides.",
                winner=winner,
            ),
        )
        return " ".join(
            [
                _(
                    "The directory gives extension %(extension)s to %(people)s.",
                    extension=extension,
                    people=", ".join(people),
                ),
                why,
                outcome,
                _("Give one of them another number in the directory."),
            ]
        )
