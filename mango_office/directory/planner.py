"""The planner: directory entries against what Odoo and Mango hold, as a plan. No I/O.

:func:`build_plan` compares the entries of a read with the records the sync
already linked and returns a :class:`~.plan.Plan` (creates, field-by-field
updates, reactivations, archives, role grants/revocations, PBX operations, held
items); :class:`PagedPlanner` does the same one page at a time;
:func:`read_and_plan` reads, plans, confirms departures and plans again.
"""

import re
from collections.abc import Mapping

from .. import phones
from .claims import (
    _Contest,
    _same_name,
    collect_claims,
    conflict_message,
)
from .credentials import generate_sip_password, sip_login_for
from .entries import DirectoryEntry
from .identity import ad_account_disabled, normalize_dn, normalize_guid
from .plan import (
    FieldChange,
    Held,
    PbxOperation,
    Plan,
    PlannedArchive,
    PlannedCreate,
    PlannedLink,
    PlannedReactivation,
    PlannedUpdate,
    RoleChange,
)
from .registries import EXTENSION, LOGIN, SEEN, SETTLED, MemoryRegistries
from .settings import PBX_FIELDS
from .transforms import _EntryError, _normalize_phone, apply_transforms
from .values import _as_datetime, _clean

# Targets Odoo or Mango cannot do without: the directory blanking them is ignored, not
# applied.
REQUIRED_TARGETS = frozenset({"user.login", "user.name", "pbx.name", "extension"})


# resolve_extension's problem for a number settled for someone else: reported by
# _Planner.report_contests, once per run, instead of by each page
_SETTLED = ("extension_conflict", None)


def _norm(value):
    if value is None or value is False:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _lower(text):
    """``text.lower()``, the same string when it is lower-case already: a registry
    key then shares the text the plan already holds."""
    lowered = text.lower()
    return text if lowered == text else lowered


def _same(a, b):
    a, b = _norm(a), _norm(b)
    if isinstance(a, str) or isinstance(b, str):
        return (str(a) if a is not None else None) == (
            str(b) if b is not None else None
        )
    return a == b


class _Planner:
    def __init__(
        self,
        settings,
        *,
        mode,
        scan_complete,
        pbx_users,
        odoo_users,
        confirmations,
        filter_changed,
        approved_departures,
        missing_groups,
        now,
        password_factory,
        reserved_extensions=None,
        registries=None,
    ):
        if mode not in ("full", "delta"):
            raise ValueError("mode must be 'full' or 'delta'")
        self.s = settings
        self.mode = mode
        self.complete = bool(scan_complete)
        self.now = _as_datetime(now)
        self.set_confirmations(confirmations)
        self.filter_changed = filter_changed
        self.approved = frozenset(normalize_guid(a) for a in approved_departures or ())
        self.set_missing_groups(missing_groups)
        self.password_factory = password_factory or generate_sip_password
        self.plan = Plan(mode=mode, complete=self.complete)
        self.pbx_users = {str(u.user_id): u for u in pbx_users or () if u.user_id}
        self.pbx_list_known = bool(self.pbx_users)
        self.odoo_users = list(odoo_users or ())
        # numbers the PBX uses for something else than a person (groups, queues):
        # {extension: owner label}; Mango refuses them with 3106, and a second 3xxx
        # within two minutes locks the whole API
        self.reserved_extensions = dict(reserved_extensions or {})
        self.role_lines = list(settings.role_mappings)
        self.required_pbx_groups = frozenset(
            normalize_dn(g) for g in settings.pbx.require_groups
        )

        # what crosses pages: taken extensions, logins, SIP logins, linked PBX users,
        # settled claims, anchors seen (in the database for a real sync)
        self.reg = registries if registries is not None else MemoryRegistries()
        self._ext_cursor = 0
        # extensions several people ask for, or that someone else holds: settled
        # once by register_claims, reported on every run by finish
        self.contests = {}
        # (registries' settled_anchor: extension -> the anchor register_claims gave
        # it to: free for them even while an unlinked PBX user they are about to be
        # linked to has it)
        lines = settings.extension_lines()
        claim_rule = settings.extension.rule or (
            lines[0].rule if lines else "create_only"
        )
        # under create_only/when_empty a linked person's number no longer follows
        # the directory: such a person's attribute is no claim
        self._with_extension = (
            set()
            if settings.extension_from_directory and claim_rule != "always"
            else None
        )
        self.pbx_by_ext, self.pbx_by_email = {}, {}
        for user in self.pbx_users.values():
            if user.extension:
                self.pbx_by_ext.setdefault(user.extension, []).append(user)
            if user.email:
                self.pbx_by_email.setdefault(user.email.lower(), []).append(user)

    def set_confirmations(self, confirmations):
        """The reader's GUID lookups of absent people, or None before any."""
        self.confirmations = (
            {normalize_guid(k): v for k, v in confirmations.items()}
            if confirmations is not None
            else None
        )

    def set_missing_groups(self, missing_groups):
        self.missing_groups = frozenset(normalize_dn(g) for g in missing_groups or ())

    # -- registries --------------------------------------------------------------------

    def _own_ext(self, ext, owner):
        if not ext:
            return
        self.reg.add_extension_owner(ext, owner)

    def _ext_owner_set(self, ext):
        if not ext:
            return set()
        return self.reg.extension_owners(ext)

    def _linked_anchor(self, pbx_user_id):
        return self.reg.pbx_anchor(pbx_user_id) if pbx_user_id else None

    def _take_sips(self, sip_logins):
        for sip in sip_logins:
            self.reg.take_sip(sip.lower().split("@")[0])

    def _register(self, linked):
        for ext, label in self.reserved_extensions.items():
            self._own_ext(_clean(ext), f"reserved:{label}")
        for user in self.pbx_users.values():
            self._own_ext(user.extension, f"pbx:{user.user_id}")
            self._take_sips(user.sip_logins)
        for user in self.odoo_users:
            self._own_ext(_clean(user.extension), f"odoo:{user.user_id}")
            if user.login:
                self.reg.default_login_owner(user.login.lower(), f"odoo:{user.user_id}")
        for rec in linked:
            owner = f"anchor:{rec.anchor}"
            extension = _clean(rec.values.get("extension"))
            pbx_extension = _clean(rec.values.get("pbx.extension"))
            self._own_ext(extension, owner)
            self._own_ext(pbx_extension, owner)
            if self._with_extension is not None and (extension or pbx_extension):
                self._with_extension.add(rec.anchor)
            login = _clean(rec.values.get("user.login"))
            if login:
                self.reg.set_login_owner(_lower(login), owner)
            if rec.pbx_user_id:
                self.reg.link_pbx(rec.pbx_user_id, rec.anchor)
            self._take_sips(rec.sip_logins)
        self.reg.page_done()

    def _self_owners(self, anchor, rec=None, pbx_user_id=None):
        owners = {f"anchor:{anchor}"}
        if rec is not None:
            if rec.pbx_user_id:
                owners.add(f"pbx:{rec.pbx_user_id}")
            if rec.user_id:
                owners.add(f"odoo:{rec.user_id}")
        if pbx_user_id:
            owners.add(f"pbx:{pbx_user_id}")
        return owners

    def _ext_free(self, ext, owners):
        return not (self._ext_owner_set(ext) - owners)

    def _owner_details(self, owner, known=None):
        """Who an owner key of the registries is, as ``Held.details`` name it:
        a person (anchor; ``known`` claims add name, login and DN), a PBX user not
        linked to anyone, an Odoo user outside the directory, or a PBX group."""
        kind, _sep, key = owner.partition(":")
        linked_anchor = self._linked_anchor(key) if kind == "pbx" else None
        if linked_anchor is not None:
            kind, key = "anchor", linked_anchor
        if kind == "anchor":
            claim = (known or {}).get(key)
            return claim.person() if claim else {"kind": "person", "anchor": key}
        if kind == "pbx":
            user = self.pbx_users.get(key)
            return {"kind": "pbx_user", "id": key, "name": user.name if user else None}
        if kind == "odoo":
            user = next((u for u in self.odoo_users if str(u.user_id) == key), None)
            return {
                "kind": "odoo_user",
                "id": int(key) if key.isdigit() else key,
                "login": user.login if user else None,
            }
        return {"kind": "pbx_group", "label": key}

    def _describe_owners(self, owner_keys, known=None):
        out, seen = [], set()
        for owner in sorted(owner_keys):
            item = self._owner_details(owner, known)
            key = (
                item["kind"],
                item.get("anchor") or item.get("id") or item.get("label"),
            )
            if key not in seen:
                seen.add(key)
                out.append(item)
        return out

    # -- extension claims --------------------------------------------------------------

    def register_claims(self, claims):
        """Settle, before any page is planned, who gets each extension the directory
        asks for (``claims``: :func:`collect_claims` of the whole scope).

        Per number: if someone the directory does not ask it for holds it (an Odoo
        user outside the directory, a PBX group, a linked person whose entry asks
        for another number or none), nobody it is asked for gets it. Otherwise a
        claimant who already holds it keeps it: in Odoo or on the PBX through the
        link, an unlinked PBX user with this number and the claimant's e-mail (or
        name), or an Odoo user the claimant is adopting. Otherwise, or between
        several holders, the stable rule of :class:`ExtensionClaim` (earliest
        created entry, then GUID). The winner's number is reserved at once, so a
        range never hands it to anyone else, whatever page that person is on."""
        by_ext = {}
        for claim in claims or ():
            if (
                self._with_extension is not None
                and claim.anchor in self._with_extension
            ):
                continue
            group = by_ext.setdefault(claim.extension, {})
            group.setdefault(claim.anchor, claim)  # overlapping bases: once
        self._with_extension = None
        numbers = sorted(by_ext)
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            self.reg.prefetch(EXTENSION, chunk)
            for ext in chunk:
                group = sorted(by_ext[ext].values(), key=lambda c: c.order)
                self._settle(ext, group)
            self.reg.page_done()

    def _settle(self, ext, group):
        anchors = {c.anchor: c for c in group}
        holders, outside = {}, []
        pbx_matching = self.s.pbx.enabled and self.s.pbx.match_existing
        for owner in self._ext_owner_set(ext):
            kind, _sep, key = owner.partition(":")
            linked_anchor = self._linked_anchor(key) if kind == "pbx" else None
            if linked_anchor is not None:
                kind, key = "anchor", linked_anchor
            if kind == "anchor":
                if key in anchors:
                    holders.setdefault(key, "holder")
                else:
                    outside.append(owner)
            elif kind == "pbx":
                claim = (
                    self._identify(self.pbx_users.get(key), group)
                    if pbx_matching
                    else None
                )
                if claim is not None:
                    holders.setdefault(claim.anchor, "pbx_user")
                elif not pbx_matching:
                    outside.append(owner)
                # else: an unlinked PBX user nobody is identified as goes, with
                # the number, to whoever the rule gives it (as to a lone claimant)
            elif kind == "odoo":
                user = next((u for u in self.odoo_users if str(u.user_id) == key), None)
                claim = self._adopter(user, group)
                if claim is not None:
                    holders.setdefault(claim.anchor, "odoo_user")
                else:
                    outside.append(owner)
            else:
                outside.append(owner)
        if outside:
            self.contests[ext] = _Contest(
                ext,
                group,
                None,
                "held_elsewhere",
                self._describe_owners(outside, anchors),
            )
            return
        if holders:
            winner = next(c for c in group if c.anchor in holders)
            why = holders[winner.anchor]
        else:
            winner = group[0]
            why = (
                "created_first"
                if winner.created
                and all(c.created and c.created > winner.created for c in group[1:])
                else "guid_order"
            )
        self._own_ext(ext, f"anchor:{winner.anchor}")
        self.reg.settle(ext, winner.anchor)
        if len(group) > 1:
            self.contests[ext] = _Contest(ext, group, winner.anchor, why)

    @staticmethod
    def _identify(pbx_user, group):
        """The claimant an unlinked PBX user is: same e-mail, else same name."""
        if pbx_user is None:
            return None
        email = (pbx_user.email or "").lower()
        found = [c for c in group if email and c.email == email]
        if not found:
            found = [c for c in group if _same_name(c.name, pbx_user.name)]
        return found[0] if len(found) == 1 else None

    def _adopter(self, user, group):
        """The claimant who adopts this Odoo user (settings.link_existing)."""
        if user is None or self.s.link_existing == "none":
            return None
        if self.s.link_existing == "login":
            found = [c for c in group if (c.login or "").lower() == user.login.lower()]
        else:
            email = (user.email or "").lower()
            found = [c for c in group if email and c.email == email]
        return found[0] if len(found) == 1 else None

    def lost_claim(self, anchor, attr_ext):
        """The contest this person's directory number was settled against them in."""
        contest = self.contests.get(attr_ext) if attr_ext else None
        if (
            contest is not None
            and contest.winner != anchor
            and any(c.anchor == anchor for c in contest.claims)
        ):
            return contest
        return None

    def report_contests(self):
        """One ``extension_conflict`` hold per person who did not get the number
        their entry asks for, naming the others: on every run while it lasts."""
        for ext in sorted(self.contests):
            contest = self.contests[ext]
            known = {c.anchor: c for c in contest.claims}
            kept_by = known[contest.winner].person() if contest.winner else None
            for claim in contest.claims:
                if claim.anchor == contest.winner:
                    continue
                details = {
                    "extension": ext,
                    "why": contest.why,
                    "person": claim.person(),
                    "kept_by": kept_by,
                    "others": [
                        c.person()
                        for c in contest.claims
                        if c.anchor not in (claim.anchor, contest.winner)
                    ],
                    "holders": list(contest.holders),
                    # what this run planned for them; absent: not read this run
                    "got": contest.outcomes.get(claim.anchor),
                    "planned": claim.anchor in contest.outcomes,
                }
                self.plan.held.append(
                    Held(
                        claim.anchor,
                        "extension",
                        "extension_conflict",
                        conflict_message(details),
                        details,
                    )
                )

    # -- helpers -----------------------------------------------------------------------

    def hold(self, anchor, action, reason, message, details=None):
        self.plan.held.append(Held(anchor, action, reason, message, details or {}))

    def hold_problem(self, anchor, action, problem, person=None):
        """Hold for an extension problem, unless finish() reports it (a settled
        claim: ``message`` None)."""
        if not problem or problem[1] is None:
            return
        reason, message, *rest = problem
        details = dict(rest[0]) if rest else {}
        if details and person:
            details["person"] = person
            message = conflict_message(details)
        self.hold(anchor, action, reason, message, details)

    def desired_values(self, entry):
        values = {}
        sources = {}
        for line in self.s.field_mappings:
            if line.rule == "ignore":
                continue
            if values.get(line.target) is not None:
                # an earlier line for this target already gave a value
                # (fallback chain)
                continue
            try:
                value = apply_transforms(
                    entry.values(line.attribute), line, self.s.default_region
                )
            except _EntryError as exc:
                # An unreadable value says nothing about the field: leave it alone
                # (an "always" line must not blank a phone because AD holds a typo).
                self.plan.warnings.append(f"{entry.anchor}: {exc}")
                continue
            values[line.target] = value
            sources.setdefault(line.target, line.rule)
        # Mango and the employee need a name/e-mail even when only the user's are
        # mapped.
        for derived, base in (
            ("pbx.name", "user.name"),
            ("pbx.email", "user.email"),
            ("employee.name", "user.name"),
        ):
            if derived == "employee.name" and not self.s.create_employees:
                continue
            if derived not in sources and base in sources:
                values[derived] = values.get(base)
                sources[derived] = sources[base]
        return values, sources

    def desired_roles(self, entry):
        roles, mango_role = set(), None
        undecidable = set()
        for line in self.role_lines:
            if line.key in self.missing_groups:
                undecidable.update(line.groups)
                continue
            if line.key in entry.groups:
                roles.update(line.groups)
                if mango_role is None and line.mango_role:
                    mango_role = line.mango_role
        return roles, mango_role or self.s.pbx.default_access_role, undecidable

    def wants_pbx(self, entry):
        if not self.s.pbx.enabled:
            return False
        if not self.required_pbx_groups:
            return True
        return bool(self.required_pbx_groups & entry.groups)

    def protected(self, anchor, rec):
        return anchor in self.s.protected_anchors or (
            rec is not None and rec.user_id in self.s.protected_user_ids
        )

    def ext_rule(self, sources):
        return self.s.extension.rule or sources.get("extension") or "create_only"

    def generate_extension(self, owners):
        # Numbers only ever get taken during a plan, so the search resumes where the
        # previous one stopped (linear over the range, not quadratic over 10k people).
        policy = self.s.extension
        number = max(self._ext_cursor, policy.range_start)
        fetched = number
        while number <= policy.range_end:
            if number >= fetched:
                # the next numbers of the range in one look
                fetched = min(number + 256, policy.range_end + 1)
                self.reg.prefetch(EXTENSION, [str(n) for n in range(number, fetched)])
            if self._ext_free(str(number), owners):
                self._ext_cursor = number + 1
                return str(number)
            number += 1
        self._ext_cursor = number
        return None

    def resolve_extension(self, anchor, attr_ext, current, owners, rule):
        """(extension, hold_reason) for this person; current is kept unless the rule
        says otherwise."""
        source = self.s.extension.source
        if source == "none":
            return current, None
        if attr_ext and not re.fullmatch(r"\d{1,8}", attr_ext):
            self.plan.warnings.append(
                f"{anchor}: extension {attr_ext!r} is not a number, ignored"
            )
            attr_ext = None
        if source == "range":
            attr_ext = None
        contest = self.lost_claim(anchor, attr_ext)
        if contest is not None:
            # settled for someone else before the read: this person keeps what
            # they have (unless it is that very number: two holders, one keeps
            # it) or gets what they would without the attribute
            extension, _problem = self.resolve_extension(
                anchor, None, None if current == attr_ext else current, owners, rule
            )
            contest.outcomes[anchor] = extension
            return extension, _SETTLED
        if current and any(
            owner.startswith("reserved:") for owner in self._ext_owner_set(current)
        ):
            # given before the PBX gave the number to a group: Mango would refuse it
            current = None
        if current and (
            rule in ("create_only", "when_empty") or not attr_ext or attr_ext == current
        ):
            return current, None
        if attr_ext:
            if self.reg.settled_anchor(attr_ext) == anchor or self._ext_free(
                attr_ext, owners
            ):
                return attr_ext, None
            if source == "attribute" or current:
                details = {
                    "extension": attr_ext,
                    "why": "held_elsewhere",
                    "person": {"kind": "person", "anchor": anchor},
                    "holders": self._describe_owners(
                        self._ext_owner_set(attr_ext) - owners
                    ),
                    "got": current,
                    "planned": True,
                }
                return current, (
                    "extension_conflict",
                    conflict_message(details),
                    details,
                )
        if current:
            return current, None
        if source in ("range", "attribute_or_range"):
            generated = self.generate_extension(owners)
            if generated is None:
                return None, (
                    "extension_exhausted",
                    (
                        "No free extension left in "
                        f"{self.s.extension.range_start}-{self.s.extension.range_end}"
                    ),
                )
            return generated, None
        return None, None

    # -- PBX ---------------------------------------------------------------------------

    def pbx_payload(self, values, extension, mango_role):
        payload = {}
        for name in PBX_FIELDS:
            value = _norm(values.get(f"pbx.{name}"))
            if value is None:
                continue
            if name == "mobile":
                value = phones.to_mango(value, self.s.default_region) or value
            payload[name] = value
        if extension:
            payload["extension"] = str(extension)
        if mango_role:
            payload["access_role_id"] = str(mango_role)
        return payload

    def match_pbx_user(self, anchor, attr_ext, email):
        if not self.s.pbx.match_existing:
            return None, None
        contest = self.contests.get(attr_ext) if attr_ext else None
        # A number the directory asks for elsewhere stays with whoever holds it: a
        # linked person holding it in Odoo (their entry asks for none) is that
        # holder, so the unlinked PBX user with the same number is theirs.
        holds_it = bool(attr_ext) and f"anchor:{anchor}" in self._ext_owner_set(
            attr_ext
        )
        if attr_ext and (
            contest is None
            or contest.winner == anchor
            or (contest.winner is None and holds_it)
        ):
            for user in self.pbx_by_ext.get(attr_ext, ()):
                if self._linked_anchor(user.user_id) is None:
                    return user, "extension"
        if email:
            # a PBX user whose number the directory gives someone else is theirs,
            # not this person's, whatever its e-mail says
            mine = f"anchor:{anchor}"
            found = [
                u
                for u in self.pbx_by_email.get(email.lower(), ())
                if self._linked_anchor(u.user_id) is None
                and not any(
                    o.startswith("anchor:") and o != mine
                    for o in self._ext_owner_set(u.extension)
                )
            ]
            if len(found) > 1:
                self.hold(
                    anchor,
                    "pbx",
                    "pbx_match_ambiguous",
                    f"{len(found)} PBX users have the e-mail {email}",
                )
                return None, "ambiguous"
            if found:
                return found[0], "email"
        return None, None

    def sip_create(self, anchor, login, extension, pbx_user_id=None, after=None):
        if not self.s.pbx.sip:
            return
        if not self.s.pbx.sip_domain:
            self.hold(
                anchor,
                "pbx",
                "pbx_no_sip_domain",
                "No SIP domain configured: SIP account not created",
            )
            return
        sip_login = sip_login_for(login, extension, self.reg.sip_view())
        self.reg.take_sip(sip_login)
        password = self.password_factory()
        self.plan.pbx.append(
            PbxOperation(
                "sip_create",
                anchor,
                f"sip_create:{anchor}",
                pbx_user_id,
                {
                    "login": sip_login,
                    "domain": self.s.pbx.sip_domain,
                    "password": password,
                    "description": login or "",
                },
                after,
            )
        )

    def provision_pbx(self, anchor, login, values, extension, mango_role, matched):
        """PBX operations for a person who has no PBX user linked yet."""
        if matched is not None:
            self.reg.link_pbx(matched.user_id, anchor)
            self.plan.pbx.append(
                PbxOperation(
                    "link",
                    anchor,
                    f"link:{anchor}",
                    matched.user_id,
                    {"extension": matched.extension or ""},
                )
            )
            desired = self.pbx_payload(values, extension, mango_role)
            # pbx_payload speaks Mango's 7XXXXXXXXXX while a PBX user may hold its
            # mobile in any notation: compare the numbers, not the spellings.
            changes = {
                k: v
                for k, v in desired.items()
                if not self.same_value(f"pbx.{k}", matched.field(k), v)
            }
            if changes:
                self.plan.pbx.append(
                    PbxOperation(
                        "member_update",
                        anchor,
                        f"member_update:{anchor}",
                        matched.user_id,
                        changes,
                    )
                )
            if not matched.sip_logins:
                self.sip_create(anchor, login, extension, pbx_user_id=matched.user_id)
            return
        if not extension:
            self.hold(
                anchor, "pbx", "pbx_no_extension", "No extension for the PBX user"
            )
            return
        if not mango_role:
            self.hold(
                anchor,
                "pbx",
                "pbx_no_role",
                "No Mango access role: set a default or map a group to one",
            )
            return
        payload = self.pbx_payload(values, extension, mango_role)
        if "name" not in payload:
            self.hold(anchor, "pbx", "pbx_no_name", "No name for the PBX user")
            return
        key = f"member_create:{anchor}"
        self.plan.pbx.append(PbxOperation("member_create", anchor, key, None, payload))
        self.sip_create(anchor, login, extension, after=key)

    # -- per entry ---------------------------------------------------------------------

    @staticmethod
    def _person(entry, values):
        return {
            "kind": "person",
            "anchor": entry.anchor,
            "name": values.get("user.name"),
            "login": values.get("user.login"),
            "dn": entry.dn,
        }

    def link_target(self, anchor, login, values):
        """(OdooUser to adopt or None, how, ok): ok False means the entry is held."""
        owner = self.reg.login_owner(login.lower())
        if owner is not None:
            if owner.startswith("odoo:") and self.s.link_existing == "login":
                user = next(u for u in self.odoo_users if f"odoo:{u.user_id}" == owner)
                return user, "login", True
            what = (
                "another directory account"
                if owner.startswith("anchor:")
                else "an Odoo user not linked to the directory"
            )
            self.hold(
                anchor,
                "create",
                "login_conflict",
                f"Login {login!r} is already used by {what}",
            )
            return None, None, False
        email = (values.get("user.email") or "").lower()
        if self.s.link_existing != "email" or not email:
            return None, None, True
        found = [u for u in self.odoo_users if u.email and u.email.lower() == email]
        if len(found) > 1:
            self.hold(
                anchor,
                "create",
                "email_ambiguous",
                f"{len(found)} Odoo users have the e-mail {email}",
            )
            return None, None, False
        if found:
            return found[0], "email", True
        return None, None, True

    def plan_create(self, entry, values, sources):
        anchor = entry.anchor
        login = _norm(values.get("user.login"))
        if not login:
            self.hold(
                anchor,
                "create",
                "no_login",
                "The directory entry has no value for the login",
            )
            return
        link_user, matched_by, ok = self.link_target(anchor, login, values)
        if not ok:
            return
        owner = f"anchor:{anchor}"
        self.reg.set_login_owner(_lower(login), owner)
        roles, mango_role, _undecidable = self.desired_roles(entry)

        attr_ext = _norm(values.get("extension"))
        # a number settled for someone else is no number for this person
        claim_ext = None if self.lost_claim(anchor, attr_ext) else attr_ext
        matched, how = (None, None)
        pbx_wanted = self.wants_pbx(entry)
        if pbx_wanted:
            matched, how = self.match_pbx_user(
                anchor, claim_ext, values.get("pbx.email")
            )
        owners = self._self_owners(
            anchor, pbx_user_id=matched.user_id if matched else None
        )
        current = None
        if matched is not None and matched.extension and not claim_ext:
            current = matched.extension  # adopt the number the PBX user already dials
        elif link_user is not None:
            owners.add(f"odoo:{link_user.user_id}")
            current = _clean(link_user.extension)
        extension, problem = self.resolve_extension(
            anchor, attr_ext, current, owners, self.ext_rule(sources)
        )
        self.hold_problem(anchor, "pbx", problem, self._person(entry, values))
        self._own_ext(extension, owner)

        if link_user is not None:
            self.record_link(
                entry, link_user, matched_by, values, sources, extension, roles
            )
        else:
            odoo_values = {
                k: v
                for k, v in sorted(values.items())
                if (
                    k.startswith("user.")
                    or (k.startswith("employee.") and self.s.create_employees)
                )
                and v is not None
            }
            self.plan.creates.append(
                PlannedCreate(
                    anchor,
                    entry.dn,
                    login,
                    odoo_values,
                    tuple(sorted(roles)),
                    mango_role,
                    extension,
                )
            )
        if pbx_wanted and how != "ambiguous" and (extension or matched or not problem):
            self.provision_pbx(anchor, login, values, extension, mango_role, matched)

    def record_link(self, entry, user, matched_by, values, sources, extension, roles):
        """Adopting an existing Odoo user: only "always" lines overwrite what it has."""
        changes = [
            FieldChange(target, None, value)
            for target, value in sorted(values.items())
            if not target.startswith("pbx.")
            and target != "extension"
            and sources.get(target) == "always"
            and value is not None
        ]
        if extension and not _same(user.extension, extension):
            changes.append(FieldChange("extension", user.extension, extension))
        self.plan.links.append(
            PlannedLink(
                entry.anchor,
                entry.dn,
                user.user_id,
                user.employee_id,
                matched_by,
                tuple(changes),
            )
        )
        grant = tuple(sorted(roles - set(user.roles)))
        if grant:
            self.plan.role_changes.append(
                RoleChange(entry.anchor, user.user_id, grant, (), grant)
            )

    def same_value(self, target, current, value):
        if _same(current, value):
            return True
        if target in ("pbx.mobile",) or target.endswith(("phone", ".mobile")):
            # Mango answers 7XXXXXXXXXX, Odoo may hold +7 XXX…: same number, no change
            region = self.s.default_region
            current = _normalize_phone(current, region) or current
            value = _normalize_phone(value, region) or value
        return _same(current, value)

    def field_changes(self, anchor, rec, values, sources, live, protected):
        changes = []
        for target, value in sorted(values.items()):
            rule = sources.get(target)
            if target == "extension" or rule in (None, "create_only", "ignore"):
                continue
            if target.startswith("pbx."):
                if not rec.pbx_user_id:
                    continue
                current = (
                    live.field(target[4:])
                    if live is not None
                    else rec.values.get(target)
                )
            else:
                current = rec.values.get(target)
            if rule == "when_empty" and _norm(current) is not None:
                continue
            if self.same_value(target, current, value):
                continue
            if value is None and target in REQUIRED_TARGETS:
                self.plan.warnings.append(
                    f"{anchor}: the directory has no value for {target}; kept "
                    f"{current!r}"
                )
                continue
            if target == "user.login" and not self.claim_login(
                anchor, current, value, protected
            ):
                continue
            changes.append(FieldChange(target, current, value))
        return changes

    def claim_login(self, anchor, current, value, protected):
        if protected:
            self.hold(
                anchor,
                "update",
                "protected",
                f"Protected user: login stays {current!r}",
            )
            return False
        owner = self.reg.login_owner(value.lower())
        if owner not in (None, f"anchor:{anchor}"):
            self.hold(
                anchor,
                "update",
                "login_conflict",
                f"New login {value!r} is already used",
            )
            return False
        if current:
            self.reg.forget_login(str(current).lower())
        self.reg.set_login_owner(_lower(value), f"anchor:{anchor}")
        return True

    def pbx_changes(self, rec, live, changes, extension, mango_role):
        """Mango member/update payload for a linked PBX user; appends the PBX-only
        FieldChanges."""
        payload = {}
        for change in list(changes):
            if change.target.startswith("pbx."):
                value = change.new
                if change.target == "pbx.mobile" and value:
                    value = phones.to_mango(value, self.s.default_region) or value
                payload[change.target[4:]] = value if value is not None else ""
        pbx_ext = (
            live.extension
            if live is not None
            else _clean(rec.values.get("pbx.extension"))
        )
        if extension and not _same(pbx_ext, extension):
            payload["extension"] = extension
            changes.append(FieldChange("pbx.extension", pbx_ext, extension))
        current_role = (
            live.access_role_id
            if live is not None
            else _clean(rec.values.get("pbx.access_role_id"))
        )
        if mango_role and not _same(current_role, mango_role):
            payload["access_role_id"] = str(mango_role)
            changes.append(
                FieldChange("pbx.access_role_id", current_role, str(mango_role))
            )
        return payload

    def update(self, entry, rec, values, sources):
        anchor = entry.anchor
        protected = self.protected(anchor, rec)
        live = self.pbx_users.get(rec.pbx_user_id) if rec.pbx_user_id else None
        pbx_wanted = self.wants_pbx(entry)
        # a required group the directory no longer has (renamed, a typo) says
        # nothing about anybody: nobody loses a PBX user because of it
        leaving_pbx = (
            bool(rec.pbx_user_id)
            and self.s.pbx.enabled
            and not pbx_wanted
            and not (self.required_pbx_groups & self.missing_groups)
        )
        pbx_missing = bool(rec.pbx_user_id) and self.pbx_list_known and live is None
        changes = self.field_changes(anchor, rec, values, sources, live, protected)
        roles, mango_role, undecidable = self.desired_roles(entry)

        current_ext = _clean(rec.values.get("extension")) or _clean(
            rec.values.get("pbx.extension")
        )
        if live is not None and live.extension:
            current_ext = current_ext or live.extension
        attr_ext = _norm(values.get("extension"))
        extension, problem = self.resolve_extension(
            anchor,
            attr_ext,
            current_ext,
            self._self_owners(anchor, rec),
            self.ext_rule(sources),
        )
        self.hold_problem(anchor, "update", problem, self._person(entry, values))
        if self.lost_claim(anchor, attr_ext):
            attr_ext = None  # settled for someone else: no number to match by
        self._own_ext(extension, f"anchor:{anchor}")
        if extension and not _same(rec.values.get("extension"), extension):
            changes.append(
                FieldChange("extension", rec.values.get("extension"), extension)
            )

        payload = {}
        if leaving_pbx or pbx_missing:
            changes = [c for c in changes if not c.target.startswith("pbx.")]
        elif rec.pbx_user_id:
            payload = self.pbx_changes(rec, live, changes, extension, mango_role)
        if changes:
            self.plan.updates.append(
                PlannedUpdate(anchor, rec.user_id, rec.employee_id, tuple(changes))
            )

        if pbx_missing:
            self.hold(
                anchor,
                "pbx",
                "pbx_user_missing",
                f"PBX user {rec.pbx_user_id} no longer exists in Mango",
            )
        elif leaving_pbx:
            self.pbx_removal(anchor, rec, protected)
        elif payload:
            self.plan.pbx.append(
                PbxOperation(
                    "member_update",
                    anchor,
                    f"member_update:{anchor}",
                    rec.pbx_user_id,
                    payload,
                )
            )
        elif not rec.pbx_user_id and pbx_wanted:
            self.pbx_for_linked(
                anchor, rec, values, attr_ext, extension, mango_role, problem
            )
        if (
            rec.pbx_user_id
            and pbx_wanted
            and not rec.sip_logins
            and live is not None
            and not live.sip_logins
        ):
            login = _norm(values.get("user.login")) or _clean(
                rec.values.get("user.login")
            )
            self.sip_create(anchor, login, extension, pbx_user_id=rec.pbx_user_id)

        role_change = self.role_change(anchor, rec, roles, undecidable, protected)
        return bool(changes or payload or role_change)

    def pbx_for_linked(
        self, anchor, rec, values, attr_ext, extension, mango_role, problem
    ):
        login = _norm(values.get("user.login")) or _clean(rec.values.get("user.login"))
        matched, how = self.match_pbx_user(
            anchor, attr_ext or extension, values.get("pbx.email")
        )
        if how == "ambiguous":
            return
        if extension or matched:
            self.provision_pbx(anchor, login, values, extension, mango_role, matched)
        elif not problem:
            self.hold(
                anchor, "pbx", "pbx_no_extension", "No extension for the PBX user"
            )

    def role_change(self, anchor, rec, roles, undecidable, protected):
        """Grant what membership gives and the user lacks; revoke only what the sync
        itself gave."""
        grant = set(roles) - set(rec.roles)
        revoke = set(rec.sync_roles) - set(roles)
        keep = set()
        for role in sorted(undecidable & revoke):
            self.hold(
                anchor,
                "revoke",
                "missing_group",
                f"Role {role}: its mapped group is missing from the directory",
            )
            keep.add(role)
        if revoke - keep and not self.complete:
            self.hold(
                anchor,
                "revoke",
                "incomplete_scan",
                "The directory read was incomplete: roles are not removed",
            )
            keep |= revoke
        if revoke - keep and protected:
            self.hold(
                anchor, "revoke", "protected", "Protected user: roles are not removed"
            )
            keep |= revoke
        revoke -= keep
        sync_after = (set(rec.sync_roles) & set(roles)) | grant | keep
        if not (grant or revoke or sync_after != set(rec.sync_roles)):
            return None
        change = RoleChange(
            anchor,
            rec.user_id,
            tuple(sorted(grant)),
            tuple(sorted(revoke)),
            tuple(sorted(sync_after)),
        )
        self.plan.role_changes.append(change)
        return change

    def pbx_removal(self, anchor, rec, protected):
        if self.s.pbx.on_departure != "delete":
            return
        if self.mode != "full" or not self.complete:
            self.hold(
                anchor,
                "pbx",
                "incomplete_scan",
                "PBX user removal waits for a complete full scan",
            )
        elif protected:
            self.hold(anchor, "pbx", "protected", "Protected user: PBX user kept")
        else:
            self.plan.pbx.append(
                PbxOperation(
                    "member_delete",
                    anchor,
                    f"member_delete:{anchor}",
                    rec.pbx_user_id,
                    {},
                )
            )

    # -- departures --------------------------------------------------------------------

    def departures(self, candidates, active_linked, entries_count):
        """candidates: list of (record, reason or None (absent: needs a lookup))."""
        if not candidates or self.departures_blocked(candidates, entries_count):
            return
        confirmed = []
        for rec, reason in candidates:
            if self.protected(rec.anchor, rec):
                self.hold(
                    rec.anchor,
                    "archive",
                    "protected",
                    "Protected user: never archived by the sync",
                )
                continue
            reason = reason or self.confirmed_absence(rec)
            if reason:
                confirmed.append((rec, reason))
        if confirmed:
            self.archive(confirmed, active_linked)

    def departures_blocked(self, candidates, entries_count):
        """Whole-run gates: any of them and nobody is archived this run."""
        if self.mode != "full":
            # absence is never inferred from a delta;
            # disabled accounts wait for the full sync
            for rec, reason in candidates:
                if reason:
                    self.hold(
                        rec.anchor,
                        "archive",
                        "full_scan_required",
                        f"Account {reason}: archived by the next full sync",
                    )
            return True
        gate = None
        if not self.complete:
            gate = (
                "incomplete_scan",
                "The directory read was incomplete or failed: nobody is archived",
            )
        elif self.filter_changed:
            gate = (
                "filter_changed",
                "Base DN or filter changed: removals are suspended for this run",
            )
        elif entries_count == 0:
            gate = (
                "empty_result",
                "The directory returned no users: nobody is archived",
            )
        if gate:
            for rec, _reason in candidates:
                self.hold(rec.anchor, "archive", *gate)
        return gate is not None

    def confirmed_absence(self, rec):
        """Why a record missing from the full scan left, per its lookup (None: hold)."""
        status = (
            None if self.confirmations is None else self.confirmations.get(rec.anchor)
        )
        if status is None and not self.s.deletion.require_confirmation:
            status = "absent"
        if status is None:
            self.plan.needs_lookup.append(rec.anchor)
            self.hold(
                rec.anchor,
                "archive",
                "awaiting_lookup",
                "Not seen in the full scan: confirming by GUID",
            )
            return None
        if status == "present":
            self.hold(
                rec.anchor,
                "archive",
                "still_present",
                "The GUID lookup still finds this account",
            )
            return None
        if status not in ("absent", "out_of_scope", "disabled", "expired"):
            self.hold(
                rec.anchor,
                "archive",
                "lookup_failed",
                "The GUID lookup failed: not archived",
            )
            return None
        return status

    def archive(self, confirmed, active_linked):
        active_linked = active_linked or 1
        count = len(confirmed)
        percent = 100.0 * count / active_linked
        policy = self.s.deletion
        over = (policy.max_count is not None and count > policy.max_count) or (
            policy.max_percent is not None and percent > policy.max_percent
        )
        for rec, reason in confirmed:
            if over and rec.anchor not in self.approved:
                self.plan.requires_confirmation = True
                self.hold(
                    rec.anchor,
                    "archive",
                    "threshold",
                    f"{count} departures ({percent:.0f}% of linked users) exceed the "
                    "safety limit: waiting for approval",
                )
                continue
            self.plan.archives.append(
                PlannedArchive(rec.anchor, rec.user_id, rec.employee_id, reason)
            )
            if (
                rec.pbx_user_id
                and self.s.pbx.enabled
                and self.s.pbx.on_departure == "delete"
            ):
                self.plan.pbx.append(
                    PbxOperation(
                        "member_delete",
                        rec.anchor,
                        f"member_delete:{rec.anchor}",
                        rec.pbx_user_id,
                        {},
                    )
                )

    # -- run ---------------------------------------------------------------------------

    def begin(self, linked):
        """Fill the registries (logins, extensions, SIP logins, PBX ids) from every
        linked record; ``linked`` may be an iterator of records that only carry the
        registry values (see :class:`PagedPlanner`)."""
        self._register(linked)
        self.gone = []  # (record, reason) of linked accounts the directory disabled

    def _prefetch_page(self, anchors, entries, linked):
        """Tell the registries every key this page will ask about, so that a
        database behind them answers a page in a few queries, not one per person.
        Returns the anchors not planned yet, with their values."""
        reg = self.reg
        reg.prefetch(SEEN, anchors)
        planned = []
        logins, extensions = set(), set()
        for anchor in anchors:
            if reg.was_seen(anchor):
                # overlapping search bases return a person twice
                continue
            values, sources = self.desired_values(entries[anchor])
            planned.append((anchor, values, sources))
            login, extension = (
                _norm(values.get("user.login")),
                _norm(values.get("extension")),
            )
            if isinstance(login, str):
                logins.add(login)
            if extension:
                extensions.add(str(extension))
            rec = linked.get(anchor)
            if rec is not None:
                login = _clean(rec.values.get("user.login"))
                if login:
                    logins.add(str(login))
                for target in ("extension", "pbx.extension"):
                    ext = _clean(rec.values.get(target))
                    if ext:
                        extensions.add(str(ext))
        reg.prefetch(LOGIN, {login.lower() for login in logins})
        reg.prefetch(EXTENSION, extensions)
        reg.prefetch(SETTLED, extensions)
        return planned

    def plan_page(self, entries, linked):
        """Plan the entries of one page into ``self.plan``; ``linked`` maps anchors to
        records (at least those of these entries)."""
        ordered = sorted(a for a in entries if a in linked) + sorted(
            a for a in entries if a not in linked
        )
        for anchor, values, sources in self._prefetch_page(ordered, entries, linked):
            if not self.reg.see(anchor):
                continue
            entry = entries[anchor]
            rec = linked.get(anchor)
            gone = (
                entry.disabled_reason
                or ("disabled" if entry.disabled else None)
                or ad_account_disabled(entry.attributes, self.now)
            )
            if gone:
                if rec is not None and rec.active:
                    self.gone.append((rec, gone))
                elif rec is None:
                    self.plan.skipped.append((anchor, f"account_{gone}"))
                continue
            if rec is None:
                self.plan_create(entry, values, sources)
                continue
            if not rec.active:
                if not rec.archived_by_sync:
                    self.hold(
                        anchor,
                        "reactivate",
                        "archived_manually",
                        "Archived in Odoo by hand: not reactivated",
                    )
                    continue
                self.plan.reactivations.append(
                    PlannedReactivation(anchor, rec.user_id, rec.employee_id)
                )
                self.update(entry, rec, values, sources)
                continue
            if not self.update(entry, rec, values, sources):
                self.plan.unchanged += 1

    def finish(self, absent, active_linked):
        """Departures into ``self.plan``, once the whole read is known.

        ``absent``: linked records not seen by the read (only looked at after a full
        scan); ``active_linked``: how many linked records are active, for the
        safe-deletion percentage."""
        departures = list(self.gone)
        if self.mode == "full":
            departures.extend(
                (rec, None)
                for rec in absent
                if rec.active and not self.reg.was_seen(rec.anchor)
            )
        departures.sort(key=lambda item: item[0].anchor)
        self.departures(departures, active_linked, self.reg.seen_count())
        self.report_contests()

    def run(self, entries, linked, claims=None):
        self.begin(linked.values())
        if claims is None and self.s.extension_from_directory:
            claims = collect_claims(self.s, entries.values(), self.now)
        self.register_claims(claims)
        self.plan_page(entries, linked)
        self.finish(
            [rec for anchor, rec in sorted(linked.items())],
            sum(1 for r in linked.values() if r.active),
        )
        return self.plan


class PagedPlanner:
    """Plans a directory read page by page, so that a sync never holds more than one
    page of entries, and one page of plan, at a time.

    Across pages it keeps only what decides between people: the registries of taken
    logins, extensions and SIP logins (filled once from every linked record), the
    anchors seen so far (all of them behind ``registries``, see :mod:`.registries`:
    in the database for a sync, so that its memory does not grow with the
    directory), and the linked accounts the directory disabled. Departures
    are decided by :meth:`finish`, after the read ended, exactly as
    :func:`build_plan` decides them.

    Two differences with one :func:`build_plan` over the whole read, both about the
    order people are looked at: within a page linked people come before newcomers,
    but a newcomer on an early page is planned before a linked person on a later one
    (the first to claim a login gets it, the other is held), and numbers from an
    extension range are handed out in page order. Who gets an extension a directory
    attribute asks for does not depend on the order: pass ``claims``
    (:func:`collect_claims` of :meth:`DirectoryReader.claim_pages`, the whole
    scope) and it is settled before the first page.

    Each page is planned as if the read were complete: the reader resolves group
    membership before the first page, so a role revoked on a page is revoked on
    complete information even if a later page fails; departures still wait for a
    complete read.
    """

    def __init__(
        self,
        settings,
        *,
        mode="full",
        linked=(),
        pbx_users=(),
        odoo_users=(),
        filter_changed=False,
        approved_departures=(),
        missing_groups=(),
        now=None,
        password_factory=None,
        reserved_extensions=None,
        claims=None,
        registries=None,
    ):
        self.mode = mode
        self._planner = _Planner(
            settings,
            mode=mode,
            scan_complete=True,
            pbx_users=pbx_users,
            odoo_users=odoo_users,
            confirmations=None,
            filter_changed=filter_changed,
            approved_departures=approved_departures,
            missing_groups=missing_groups,
            now=now,
            password_factory=password_factory,
            reserved_extensions=reserved_extensions,
            registries=registries,
        )
        self._planner.begin(linked)
        # the extensions the whole scope asks for, settled before the first page
        self._planner.register_claims(claims)

    @property
    def registries(self):
        """What the planner remembers across pages, the anchors seen among it."""
        return self._planner.reg

    def _fresh_plan(self, complete=True):
        planner = self._planner
        planner.plan = Plan(mode=self.mode, complete=complete)
        return planner.plan

    def plan_page(self, entries, linked=(), *, missing_groups=None):
        """The plan of one page: creates, updates, role changes, PBX operations and
        holds of these entries. ``linked``: the linked records of (at least) these
        entries' anchors; ``missing_groups``: as soon as the reader knows them."""
        planner = self._planner
        if missing_groups is not None:
            planner.set_missing_groups(missing_groups)
        linked_map = (
            dict(linked)
            if isinstance(linked, Mapping)
            else {r.anchor: r for r in linked}
        )
        plan = self._fresh_plan()
        planner.plan_page(_coerce_entries(entries), linked_map)
        planner.reg.page_done()
        return plan

    def finish(self, absent=(), *, complete, active_linked, confirmations=None):
        """The departures plan: archives, PBX removals, their holds and the anchors
        to confirm by GUID (then call again with the reader's confirmations).

        ``absent``: linked records that may have left (those not in :attr:`seen`
        matter, after a full read); ``active_linked``: the number of active linked
        records, the base of the percentage threshold. May be called more than once."""
        planner = self._planner
        planner.complete = bool(complete)
        planner.set_confirmations(confirmations)
        plan = self._fresh_plan(complete=bool(complete))
        planner.finish(absent, active_linked)
        planner.reg.page_done()
        return plan


def _coerce_entries(entries):
    if isinstance(entries, Mapping):
        items = [DirectoryEntry.from_dict(v, anchor=k) for k, v in entries.items()]
    else:
        items = [DirectoryEntry.from_dict(v) for v in entries or ()]
    return {e.anchor: e for e in items}


def build_plan(
    entries,
    linked,
    settings,
    *,
    mode="full",
    scan_complete=True,
    pbx_users=(),
    odoo_users=(),
    confirmations=None,
    filter_changed=False,
    approved_departures=(),
    missing_groups=(),
    now=None,
    password_factory=None,
    reserved_extensions=None,
    claims=None,
):
    """Compare directory entries with the linked records and say what to do. No I/O.

    ``reserved_extensions``: ``{extension: label}`` of numbers the PBX gives to
    something else than a person (groups): never handed out, held when a directory
    attribute asks for one. ``claims``: the :class:`ExtensionClaim` of the whole
    scope (default: collected from ``entries``, which is the whole scope of a full
    read; pass them for a delta read)."""
    linked_map = {}
    for rec in linked or ():
        if rec.anchor in linked_map:
            raise ValueError(f"two linked records share the anchor {rec.anchor}")
        linked_map[rec.anchor] = rec
    planner = _Planner(
        settings,
        mode=mode,
        scan_complete=scan_complete,
        pbx_users=pbx_users,
        odoo_users=odoo_users,
        confirmations=confirmations,
        filter_changed=filter_changed,
        approved_departures=approved_departures,
        missing_groups=missing_groups,
        now=now,
        password_factory=password_factory,
        reserved_extensions=reserved_extensions,
    )
    return planner.run(_coerce_entries(entries), linked_map, claims)


def plan_from_scan(scan, linked, settings, **kwargs):
    kwargs.setdefault("mode", scan.mode)
    kwargs.setdefault("scan_complete", scan.complete)
    kwargs.setdefault("missing_groups", scan.missing_groups)
    return build_plan(scan.entries, linked, settings, **kwargs)


def read_and_plan(reader, linked, settings, *, watermark=None, progress=None, **kwargs):
    """Read (delta when a watermark is given, else full), plan, confirm departures by
    GUID, plan again: ``(scan, plan)``. Save ``scan.watermark`` only after applying the
    plan successfully, and only if ``scan.complete``."""
    linked = list(linked)
    if watermark is None:
        scan = reader.full_scan(progress=progress)
    else:
        scan = reader.delta_scan(watermark, progress=progress)
    plan = plan_from_scan(scan, linked, settings, **kwargs)
    if plan.needs_lookup:
        confirmations = reader.confirm_departures(plan.needs_lookup)
        plan = plan_from_scan(
            scan, linked, settings, confirmations=confirmations, **kwargs
        )
    return scan, plan
