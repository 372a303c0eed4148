"""Apply a plan to Odoo: users, employees, groups and the directory links.

Creates go in batches (one insert per batch of users, employees and links) and
fall back to one by one to isolate a failing entry; every other change runs in
its own savepoint, so one bad entry is recorded on the run and the rest goes on.
References between people (managers) are resolved at the end of the run, when
everybody has a record.
"""

from datetime import timedelta

from odoo import Command, fields
from odoo.tools import SQL

from odoo.addons.mango_telephony.compat.employees import WORK_CONTACT_FIELDS
from odoo.addons.mango_telephony.compat.groups import USER_GROUPS

from mango_office import directory as core

from ..models.avatar_mixin import SKIP_STORED_AVATAR
from ..models.bulk_subscriptions import SUBSCRIBE_BY_QUERY

TRUE_WORDS = {"1", "true", "yes", "y", "on", "t"}

# Creating people in bulk: no invitation mail, no chatter log or follower per
# record, no stored copy of the generated initials avatar (see avatar_mixin.py),
# channel subscriptions without loading the whole staff (see bulk_subscriptions.py).
CREATE_CONTEXT = {
    "no_reset_password": True,
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
    SKIP_STORED_AVATAR: True,
    SUBSCRIBE_BY_QUERY: True,
}


class OdooApply:
    """Part of :class:`~.run.DirectorySync`: uses ``self.directory``, ``self.env``,
    ``self.links``, the journal and the run's batching (``_step``,
    ``_end_batch``, ``batch_size``)."""

    def _extensions_kept_in_odoo(self):
        """Whether users' extensions can be written in Odoo: a user's extension is
        a row of the extension list of their company's Mango account, so without
        an account only the directory link remembers it."""
        if not hasattr(self, "_has_mango_account"):
            self._has_mango_account = bool(
                self.env["mango.account"]._mango_account_for_company(
                    self.directory.company_id
                )
            )
        return self._has_mango_account

    # values -> ORM ---------------------------------------------------------
    def _field_meta(self, model):
        return self.env[model]._fields

    def _convert(self, model, name, value, deferred, anchor):
        """ORM value for a planned directory value; None means 'skip this field'."""
        field = self._field_meta(model).get(name)
        if field is None:
            return None
        if value in (None, ""):
            return False
        if field.type in ("char", "text", "html"):
            return str(value)
        if field.type == "selection":
            keys = [k for k, _label in field._description_selection(self.env)]
            return value if value in keys else None
        if field.type == "integer":
            try:
                return int(str(value).strip())
            except ValueError:
                return None
        if field.type == "float":
            try:
                return float(str(value).replace(",", "."))
            except ValueError:
                return None
        if field.type == "boolean":
            return str(value).strip().lower() in TRUE_WORDS
        if field.type == "date":
            text = str(value)
            try:
                return fields.Date.to_date(
                    text[:10] if "-" in text else f"{text[:4]}-{text[4:6]}-{text[6:8]}"
                )
            except ValueError:
                return None
        if field.type == "many2one":
            if field.comodel_name in ("hr.employee", "res.users"):
                # the cached normalisation hands out one string per manager
                deferred.append((model, name, core.normalize_dn(str(value)), anchor))
                return None
            return self._find_or_create(field.comodel_name, str(value))
        return None

    def _find_or_create(self, comodel, name):
        cache = self.__dict__.setdefault("_m2o_cache", {})
        key = (comodel, name.lower())
        if key in cache:
            return cache[key]
        Model = self.env[comodel].sudo()
        domain = [
            (
                Model._rec_name or "name",
                "=ilike",
                name.replace("%", r"\%").replace("_", r"\_"),
            )
        ]
        if "company_id" in Model._fields:
            domain.append(("company_id", "in", [False, self.directory.company_id.id]))
        record = Model.search(domain, limit=1)
        if not record and comodel in ("hr.department", "hr.job"):
            vals = {"name": name}
            if "company_id" in Model._fields:
                vals["company_id"] = self.directory.company_id.id
            record = Model.create(vals)
        cache[key] = record.id or None
        return cache[key]

    def _split_values(self, values, deferred, anchor):
        user_vals, employee_vals, pbx_vals = {}, {}, {}
        for target, value in values.items():
            prefix, _sep, name = target.partition(".")
            if prefix == "user":
                if name == "login":
                    if value:
                        user_vals["login"] = value
                    continue
                converted = self._convert("res.users", name, value, deferred, anchor)
                if converted is not None:
                    user_vals[name] = converted
            elif prefix == "employee":
                converted = self._convert("hr.employee", name, value, deferred, anchor)
                if converted is not None:
                    employee_vals[name] = converted
            elif prefix == "pbx":
                pbx_vals[name] = value
        return user_vals, employee_vals, pbx_vals

    def _resolve_deferred(self):
        """Managers and other person references, once everybody has a record.

        Read from the link table, not from records kept in memory: the people
        referred to may have been created pages ago."""
        deferred = self.__dict__.pop("_deferred", [])
        if not deferred:
            return
        wanted = {dn for _model, _name, dn, _anchor in deferred}
        sources = {anchor for _model, _name, _dn, anchor in deferred}
        by_dn, by_anchor = {}, {}
        rows = self._link_cursor_rows(
            SQL(
                "SELECT anchor, dn, user_id, employee_id FROM mango_ldap_link"
                " WHERE directory_id = %s",
                self.directory.id,
            )
        )
        for anchor, dn, user_id, employee_id in rows:
            if anchor in sources:
                by_anchor[anchor] = (user_id, employee_id)
            if dn:
                key = core.normalize_dn.__wrapped__(dn)
                if key in wanted:
                    by_dn[key] = (user_id, employee_id)
        for index, (model, name, dn, anchor) in enumerate(deferred, 1):
            source = by_anchor.get(anchor)
            record_id = source and (source[1] if model == "hr.employee" else source[0])
            if not record_id:
                continue
            comodel = self._field_meta(model)[name].comodel_name
            target = by_dn.get(dn)
            ref_id = (
                (target[1] if comodel == "hr.employee" else target[0])
                if target
                else None
            )
            record = self.env[model].with_context(active_test=False).browse(record_id)
            try:
                with self.env.cr.savepoint():
                    record.write({name: ref_id or False})
            except Exception as exc:  # noqa: BLE001 - recorded on the run, never fatal
                self._error("update", anchor, exc)
            if index % self.batch_size == 0:
                self._end_batch()

    # creates ---------------------------------------------------------------
    def _user_defaults(self):
        d = self.directory
        return {
            "company_id": d.company_id.id,
            "company_ids": [Command.set([d.company_id.id])],
        }

    def _apply_creates(self, creates):
        d = self.directory
        Users = self.env["res.users"].sudo().with_context(**CREATE_CONTEXT)
        Employees = self.env["hr.employee"].sudo().with_context(**CREATE_CONTEXT)
        Link = self.env["mango.ldap.link"].sudo()
        default_groups = d.default_group_ids
        deferred = self.__dict__.setdefault("_deferred", [])
        blank_targets = {
            m._mango_target
            for m in d.mapping_ids
            if m.target in ("user", "employee")
            and m.rule != "ignore"
            and m.field_id.name != "name"
            and not m.field_id.required
        }
        for batch in self._batches(list(creates)):
            prepared = []
            for create in batch:
                # Mapped fields the entry leaves empty start empty, instead of with
                # an Odoo default the next run would then clear.
                values = dict.fromkeys(blank_targets)
                values.update(create.values)
                user_vals, employee_vals, _pbx = self._split_values(
                    values, deferred, create.anchor
                )
                groups = default_groups | self.env["res.groups"].union(
                    *[self._group_from_token(t) for t in (create.roles or ())]
                )
                user_vals.setdefault("name", create.login)
                user_vals.update(
                    self._user_defaults(),
                    login=create.login,
                    **{USER_GROUPS: [Command.set(groups.ids)]},
                )
                if create.extension and self._extensions_kept_in_odoo():
                    user_vals["mango_extension"] = create.extension
                if d.create_employees:
                    # The new employee's work contact is the user's partner, and
                    # hr writes work e-mail and mobile (phone on 19.0) back to it one employee at a
                    # time; giving them to the partner with the user is the same end
                    # state in one batched insert (the employee's value wins, as
                    # with hr's own write).
                    for employee_field, partner_field in WORK_CONTACT_FIELDS:
                        if employee_field in employee_vals:
                            user_vals[partner_field] = employee_vals.pop(employee_field)
                prepared.append((create, user_vals, employee_vals))
            try:
                with self.env.cr.savepoint():
                    self._create_batch(prepared, Users, Employees, Link)
            except Exception:  # noqa: BLE001 - fall back to one by one to isolate the culprit
                for item in prepared:
                    try:
                        with self.env.cr.savepoint():
                            self._create_batch([item], Users, Employees, Link)
                    except Exception as exc:  # noqa: BLE001
                        create = item[0]
                        self._error(
                            "create",
                            create.anchor,
                            exc,
                            dn=create.dn,
                            entry_name=item[1].get("name"),
                        )
            self._step(len(batch))
            self._end_batch()

    def _create_batch(self, prepared, Users, Employees, Link):
        users = Users.create([user_vals for _c, user_vals, _e in prepared])
        if self.directory.create_employees:
            # hr.employee's create looks up each user's partner's employees one
            # person at a time, and work_contact_id has no index: one scan of
            # hr_employee per person makes an import quadratic. One read for the
            # batch fills the cache those lookups use.
            users.partner_id.fetch(["employee_ids"])
        employee_list = []
        for (_create, user_vals, employee_vals), user in zip(
            prepared, users, strict=True
        ):
            if self.directory.create_employees:
                vals = {
                    "name": user_vals.get("name"),
                    "company_id": self.directory.company_id.id,
                }
                vals.update(employee_vals)
                vals["user_id"] = user.id
                employee_list.append(vals)
        employees = Employees.create(employee_list) if employee_list else Employees
        link_vals = []
        grant_groups = []
        for index, ((create, user_vals, _e), user) in enumerate(
            zip(prepared, users, strict=True)
        ):
            employee = employees[index] if employee_list else Employees
            link_vals.append(
                {
                    "directory_id": self.directory.id,
                    "anchor": create.anchor,
                    "dn": create.dn,
                    "name": user_vals.get("name"),
                    "login": create.login,
                    "user_id": user.id,
                    "employee_id": employee.id or False,
                    "extension": create.extension or False,
                    "pbx_role": create.mango_role or False,
                    "last_seen": fields.Datetime.now(),
                }
            )
            grant_groups.append(create.roles or ())
        links = Link.create(link_vals)
        grants = []
        for link, tokens in zip(links, grant_groups, strict=True):
            self.links[link.anchor] = link
            for token in tokens:
                group = self._group_from_token(token)
                if group:
                    grants.append({"link_id": link.id, "group_id": group.id})
            self._line("create", "done", link.anchor)
        if grants:
            self.env["mango.ldap.grant"].sudo().create(grants)
        self.counts["created"] += len(links)

    # updates ---------------------------------------------------------------
    def _write_changes(self, link, changes, deferred):
        """Write planned FieldChanges to the link's user and employee."""
        values = {change.target: change.new for change in changes}
        user_vals, employee_vals, _pbx = self._split_values(
            values, deferred, link.anchor
        )
        link_vals = {"last_seen": fields.Datetime.now()}
        if "extension" in values:
            link_vals["extension"] = values["extension"] or False
            if self._extensions_kept_in_odoo():
                user_vals["mango_extension"] = values["extension"] or False
        if user_vals and link.user_id:
            link.user_id.with_context(active_test=False, mail_notrack=True).write(
                user_vals
            )
            if "name" in user_vals:
                link_vals["name"] = user_vals["name"]
            if "login" in user_vals:
                link_vals["login"] = user_vals["login"]
        if employee_vals and link.employee_id:
            link.employee_id.with_context(active_test=False, mail_notrack=True).write(
                employee_vals
            )
        link.write(link_vals)

    def _apply_updates(self, updates):
        deferred = self.__dict__.setdefault("_deferred", [])
        for batch in self._batches(list(updates)):
            for update in batch:
                link = self.links.get(update.anchor)
                if not link:
                    continue
                odoo_changes = [
                    c for c in update.changes if not c.target.startswith("pbx.")
                ]
                try:
                    with self.env.cr.savepoint():
                        self._write_changes(link, odoo_changes, deferred)
                    self.counts["updated"] += 1
                    self._line(
                        "update",
                        "done",
                        update.anchor,
                        changes={c.target: [c.old, c.new] for c in update.changes},
                    )
                except Exception as exc:  # noqa: BLE001 - recorded on the run, the rest goes on
                    self._error("update", update.anchor, exc)
            self._step(len(batch))
            self._end_batch()

    def _apply_links(self, adoptions):
        """Adopt Odoo users that existed before the sync (link_existing)."""
        Link = self.env["mango.ldap.link"].sudo()
        Employees = self.env["hr.employee"].sudo().with_context(**CREATE_CONTEXT)
        deferred = self.__dict__.setdefault("_deferred", [])
        for adopted in adoptions:
            try:
                with self.env.cr.savepoint():
                    user = self.env["res.users"].browse(adopted.user_id)
                    employee = self.env["hr.employee"].browse(adopted.employee_id or [])
                    if not employee and self.directory.create_employees:
                        employee = Employees.create(
                            {
                                "name": user.name,
                                "user_id": user.id,
                                "company_id": self.directory.company_id.id,
                            }
                        )
                    link = Link.create(
                        {
                            "directory_id": self.directory.id,
                            "anchor": adopted.anchor,
                            "dn": adopted.dn,
                            "name": user.name,
                            "login": user.login,
                            "user_id": user.id,
                            "employee_id": employee.id or False,
                            "extension": getattr(user, "mango_extension", False)
                            or False,
                        }
                    )
                    self.links[link.anchor] = link
                    self._write_changes(link, adopted.changes, deferred)
                self.counts["created"] += 1
                self._line(
                    "link",
                    "done",
                    adopted.anchor,
                    dn=adopted.dn,
                    message=self._("Matched by %s", adopted.matched_by),
                    changes={c.target: [c.old, c.new] for c in adopted.changes},
                )
            except Exception as exc:  # noqa: BLE001
                self._error("link", adopted.anchor, exc, dn=adopted.dn)
            self._step()
        self._flush_lines()
        self._commit()

    def _refresh_dns(self, entry_dns):
        """DNs follow renames and moves even when no mapped value changed."""
        for anchor, dn in entry_dns.items():
            link = self.links.get(anchor)
            if link and dn and link.dn != dn:
                link.dn = dn

    def _apply_reactivations(self, reactivations):
        for item in reactivations:
            link = self.links.get(item.anchor)
            if not link:
                continue
            try:
                with self.env.cr.savepoint():
                    if link.user_id:
                        link.user_id.with_context(active_test=False).write(
                            {"active": True}
                        )
                    if link.employee_id:
                        link.employee_id.with_context(active_test=False).write(
                            {"active": True}
                        )
                    link.write(
                        {
                            "state": "active",
                            "departed_at": False,
                            "reserved_until": False,
                        }
                    )
                self._line("reactivate", "done", item.anchor)
                self.counts["updated"] += 1
            except Exception as exc:  # noqa: BLE001
                self._error("reactivate", item.anchor, exc)
            self._step()
        self._flush_lines()
        self._commit()

    def _apply_roles(self, role_changes):
        Grant = self.env["mango.ldap.grant"].sudo()
        for change in role_changes:
            link = self.links.get(change.anchor)
            if not link or not link.user_id:
                continue
            try:
                with self.env.cr.savepoint():
                    grant = self.env["res.groups"].union(
                        *[self._group_from_token(t) for t in change.grant]
                    )
                    revoke = self.env["res.groups"].union(
                        *[self._group_from_token(t) for t in change.revoke]
                    )
                    commands = [Command.link(g.id) for g in grant]
                    commands += [Command.unlink(g.id) for g in revoke]
                    if commands:
                        link.user_id.with_context(
                            active_test=False, **{SUBSCRIBE_BY_QUERY: True}
                        ).write({USER_GROUPS: commands})
                    wanted = self.env["res.groups"].union(
                        *[self._group_from_token(t) for t in change.sync_roles]
                    )
                    existing = link.grant_ids
                    existing.filtered(
                        lambda g, wanted=wanted: g.group_id not in wanted
                    ).unlink()
                    have = existing.exists().group_id
                    Grant.create(
                        [{"link_id": link.id, "group_id": g.id} for g in wanted - have]
                    )
                self._line(
                    "roles",
                    "done",
                    change.anchor,
                    changes=self._role_changes_display(change),
                )
            except Exception as exc:  # noqa: BLE001
                self._error("roles", change.anchor, exc)
            self._step()
        self._flush_lines()
        self._commit()

    # archives --------------------------------------------------------------
    def _apply_archives(self, archives):
        for archive in archives:
            self._archive_one(archive.anchor, archive.reason)
            self._step()
        self._flush_lines()
        self._commit()

    def _archive_one(self, anchor, reason):
        link = self.links.get(anchor)
        if not link:
            return
        d = self.directory
        if link.user_id and link.user_id in d.protected_user_ids:
            self._line(
                "archive",
                "skipped",
                anchor,
                message=self._("Protected user: left untouched."),
            )
            return
        try:
            with self.env.cr.savepoint():
                if link.user_id:
                    link.user_id.with_context(active_test=False).write(
                        {"active": False}
                    )
                if link.employee_id:
                    link.employee_id.with_context(active_test=False).write(
                        {"active": False}
                    )
                grace = timedelta(days=max(d.extension_grace_days, 0))
                link.write(
                    {
                        "state": "disabled"
                        if reason in ("disabled", "expired")
                        else "departed",
                        "departed_at": fields.Datetime.now(),
                        "reserved_until": fields.Date.context_today(d) + grace
                        if link.extension
                        else False,
                    }
                )
            self.counts["archived"] += 1
            self._line("archive", "done", anchor, message=reason)
        except Exception as exc:  # noqa: BLE001 - recorded on the run, the rest goes on
            self._error("archive", anchor, exc)
            return
        if (
            d.departed_pbx_action == "disable"
            and link.pbx_user_id
            and link.pbx_state == "active"
        ):
            self._pbx_disable(link)
