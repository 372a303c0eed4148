"""What already exists, as the planner's values.

The planner compares the directory with what Odoo and the PBX hold: the links
this directory owns (with the current value of each mapped field), the Odoo
users it does not own (for clashes and adoption), the PBX users and the PBX
groups' numbers. Reading them is here, a page at a time or through a cursor,
so that a 10,000-person directory is never held in the ORM cache at once.
"""

from odoo.tools import SQL

from mango_office import directory as core


class ExistingState:
    """Readers of Odoo's and the PBX's current state for one run.

    Part of :class:`~.run.DirectorySync`: uses ``self.directory``, ``self.env``,
    ``self.pbx_client`` and fills ``self.links`` (anchor → link record).
    """

    def _mapped_fields(self, model):
        return [
            m.field_id
            for m in self.directory.mapping_ids
            if m.field_id and m.field_id.model == model
        ]

    def linked_records(self, pbx_by_id, anchors=None):
        """``LinkedRecord`` for the links of these anchors (all links when None), with
        the current value of each mapped target; they become ``self.links``."""
        d = self.directory
        domain = [("directory_id", "=", d.id)]
        if anchors is not None:
            domain.append(("anchor", "in", list(anchors)))
        links = self.env["mango.ldap.link"].search(domain)
        # one read for 10,000 links instead of a dozen attribute reads per link
        link_rows = links.read(
            [
                "anchor",
                "user_id",
                "employee_id",
                "state",
                "dn",
                "extension",
                "pbx_user_id",
                "pbx_state",
                "pbx_role",
                "sip_login",
            ],
            load=None,
        )
        self.links = {
            row["anchor"]: link for link, row in zip(links, link_rows, strict=True)
        }
        user_fields = self._mapped_fields("res.users")
        employee_fields = self._mapped_fields("hr.employee")
        users = (
            self.env["res.users"]
            .browse({row["user_id"] for row in link_rows if row["user_id"]})
            .with_context(active_test=False)
        )
        employees = (
            self.env["hr.employee"]
            .browse({row["employee_id"] for row in link_rows if row["employee_id"]})
            .with_context(active_test=False)
        )
        user_data = (
            {
                row["id"]: row
                for row in users.read(
                    [f.name for f in user_fields] + ["login", "active"], load=None
                )
            }
            if users
            else {}
        )
        employee_data = (
            {
                row["id"]: row
                for row in employees.read(
                    ["name"] + [f.name for f in employee_fields if f.name != "name"],
                    load=None,
                )
            }
            if employees
            else {}
        )
        dn_by_employee = {
            row["employee_id"]: row["dn"] for row in link_rows if row["employee_id"]
        }
        dn_by_user = {row["user_id"]: row["dn"] for row in link_rows if row["user_id"]}
        m2o_names = self._m2o_names(
            user_fields, user_data, employee_fields, employee_data
        )
        mapped_groups = d.role_mapping_ids.group_ids
        roles_by_user = {}
        if mapped_groups and users:
            # Tokens first: they query ir.model.data and would replace the result set.
            tokens = {g.id: self._group_token(g) for g in mapped_groups}
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    "SELECT uid, gid FROM res_groups_users_rel WHERE uid IN %s AND gid IN %s",
                    tuple(users.ids),
                    tuple(mapped_groups.ids),
                )
            )
            for uid, gid in self.env.cr.fetchall():
                roles_by_user.setdefault(uid, set()).add(tokens[gid])
        grants = {}
        Groups = self.env["res.groups"]
        for row in self.env["mango.ldap.grant"].search_read(
            [("link_id", "in", links.ids)], ["link_id", "group_id"], load=None
        ):
            grants.setdefault(row["link_id"], set()).add(
                self._group_token(Groups.browse(row["group_id"]))
            )
        records = []
        for link in link_rows:
            values = {}
            user_row = user_data.get(link["user_id"], {})
            for field in user_fields:
                values[f"user.{field.name}"] = self._current(
                    field,
                    user_row.get(field.name),
                    m2o_names,
                    dn_by_employee,
                    dn_by_user,
                )
            if "login" in user_row:
                values["user.login"] = user_row["login"]
            employee_row = employee_data.get(link["employee_id"], {})
            if employee_row:
                # The planner derives employee.name from user.name when it is not mapped.
                values["employee.name"] = employee_row.get("name") or None
            for field in employee_fields:
                values[f"employee.{field.name}"] = self._current(
                    field,
                    employee_row.get(field.name),
                    m2o_names,
                    dn_by_employee,
                    dn_by_user,
                )
            values["extension"] = link["extension"] or None
            pbx_user = (
                pbx_by_id.get(str(link["pbx_user_id"])) if link["pbx_user_id"] else None
            )
            if pbx_user is not None:
                values["pbx.extension"] = pbx_user.extension
            if link["pbx_role"]:
                values["pbx.access_role_id"] = link["pbx_role"]
            records.append(
                core.LinkedRecord(
                    anchor=link["anchor"],
                    user_id=link["user_id"] or None,
                    employee_id=link["employee_id"] or None,
                    active=link["state"] == "active"
                    and bool(user_row.get("active", True)),
                    archived_by_sync=link["state"] in ("departed", "disabled"),
                    values=values,
                    roles=frozenset(roles_by_user.get(link["user_id"], ())),
                    sync_roles=frozenset(grants.get(link["id"], ())),
                    pbx_user_id=(link["pbx_user_id"] or None)
                    if link["pbx_state"] != "deleted"
                    else None,
                    sip_logins=(link["sip_login"],) if link["sip_login"] else (),
                    dn=link["dn"],
                )
            )
        return records

    def _link_cursor_rows(self, query):
        """Rows of a query over the directory's links, fetched a slice at a time
        from a server-side cursor of the run's transaction: neither the worker nor
        the client library holds them all, and the queries made while they are
        consumed (the registries' writes) do not disturb them."""
        self.env.flush_all()
        with self.env.cr._cnx.cursor(name=f"mango_ldap_links_{id(query)}") as rows:
            rows.itersize = 2000
            rows.execute(query.code, query.params)
            yield from rows

    def registry_records(self, pbx_by_id):
        """Every link as a ``LinkedRecord`` carrying only what the planner's
        registries need (login, extensions, PBX user, SIP login): the logins and
        numbers taken by people on pages not read yet. Generated one at a time; the
        planner keeps the registries, not the records."""
        rows = self._link_cursor_rows(
            SQL(
                """SELECT l.anchor, l.user_id, l.extension, l.pbx_user_id,
                          l.pbx_state, l.sip_login, u.login
                     FROM mango_ldap_link l
                LEFT JOIN res_users u ON u.id = l.user_id
                    WHERE l.directory_id = %s""",
                self.directory.id,
            )
        )
        for (
            anchor,
            user_id,
            extension,
            pbx_user_id,
            pbx_state,
            sip_login,
            login,
        ) in rows:
            live = pbx_by_id.get(str(pbx_user_id)) if pbx_user_id else None
            yield core.LinkedRecord(
                anchor=anchor,
                user_id=user_id or None,
                values={
                    "extension": extension or None,
                    "pbx.extension": live.extension if live is not None else None,
                    "user.login": login,
                },
                pbx_user_id=pbx_user_id if pbx_state != "deleted" else None,
                sip_logins=(sip_login,) if sip_login else (),
            )

    def active_links(self, registries):
        """(number of active links, ``LinkedRecord`` of the active links whose anchor
        the run has not seen, per its ``registries``): what the departure check
        needs, nothing more; the anchors seen stay in the database."""
        self.env.flush_all()
        active = SQL(
            """FROM mango_ldap_link l
          LEFT JOIN res_users u ON u.id = l.user_id
              WHERE l.directory_id = %s AND l.state = 'active'
                AND (u.id IS NULL OR u.active)""",
            self.directory.id,
        )
        self.env.cr.execute(SQL("SELECT count(*) %s", active))
        count = self.env.cr.fetchone()[0]
        rows = self._link_cursor_rows(
            SQL(
                """SELECT l.anchor, l.user_id, l.employee_id, l.pbx_user_id,
                          l.pbx_state, l.dn %s AND %s""",
                active,
                registries.unseen_condition(SQL.identifier("l", "anchor")),
            )
        )
        absent = []
        for anchor, user_id, employee_id, pbx_user_id, pbx_state, dn in rows:
            absent.append(
                core.LinkedRecord(
                    anchor=anchor,
                    user_id=user_id or None,
                    employee_id=employee_id or None,
                    pbx_user_id=pbx_user_id if pbx_state != "deleted" else None,
                    dn=dn,
                )
            )
        return count, absent

    def _load_links(self, anchors):
        """``self.links`` for these anchors only (the page or the departures)."""
        links = self.env["mango.ldap.link"].search(
            [("directory_id", "=", self.directory.id), ("anchor", "in", list(anchors))]
        )
        self.links = {link.anchor: link for link in links}

    def _m2o_names(self, user_fields, user_data, employee_fields, employee_data):
        """display names of the many2one values, one read per comodel."""
        wanted = {}
        for fields_, data in (
            (user_fields, user_data),
            (employee_fields, employee_data),
        ):
            for field in fields_:
                if field.ttype != "many2one" or field.relation in (
                    "hr.employee",
                    "res.users",
                ):
                    continue
                ids = {row.get(field.name) for row in data.values()} - {None, False}
                wanted.setdefault(field.relation, set()).update(ids)
        names = {}
        for model, ids in wanted.items():
            for record in self.env[model].sudo().browse(list(ids)).exists():
                names[(model, record.id)] = record.display_name
        return names

    @staticmethod
    def _current(field, value, m2o_names, dn_by_employee, dn_by_user):
        if value in (False, None, ""):
            return None
        if field.ttype == "many2one":
            if field.relation == "hr.employee":
                return dn_by_employee.get(value)
            if field.relation == "res.users":
                return dn_by_user.get(value)
            return m2o_names.get((field.relation, value))
        if field.ttype == "boolean":
            return "true" if value else None
        return str(value)

    def unlinked_users(self):
        """Odoo users this directory does not own: login/e-mail/extension clashes, adoption."""
        has_extension = "mango_extension" in self.env["res.users"]._fields
        cols = ["id", "login", "email", "active"] + (
            ["mango_extension"] if has_extension else []
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "SELECT user_id FROM mango_ldap_link"
                " WHERE directory_id = %s AND user_id IS NOT NULL",
                self.directory.id,
            )
        )
        linked_ids = {user_id for (user_id,) in self.env.cr.fetchall()}
        # the linked users stay out of the read (after a first import: all of them)
        rows = (
            self.env["res.users"]
            .with_context(active_test=False)
            .search_read(
                [("share", "=", False), ("id", "not in", list(linked_ids))],
                cols,
                load=None,
            )
        )
        employees = {}
        if self.directory.link_existing != "none":
            for row in (
                self.env["hr.employee"]
                .with_context(active_test=False)
                .search_read(
                    [
                        ("user_id", "!=", False),
                        ("company_id", "=", self.directory.company_id.id),
                    ],
                    ["user_id"],
                    load=None,
                )
            ):
                employees.setdefault(row["user_id"], row["id"])
        result = []
        for row in rows:
            if row["id"] in linked_ids:
                continue
            result.append(
                core.OdooUser(
                    row["id"],
                    row["login"],
                    email=row["email"] or None,
                    extension=(row.get("mango_extension") or None),
                    active=row["active"],
                    employee_id=employees.get(row["id"]),
                )
            )
        return result

    def pbx_users(self):
        d = self.directory
        if not (d.account_id and d.create_pbx_users):
            return []
        self.pbx_client = d.account_id._mango_client()
        items = self.pbx_client.users(
            ext_fields=(
                "general.user_id",
                "general.sips",
                "general.access_role_id",
                "general.mobile",
            )
        )
        # Mobiles stay as Mango spells them (7XXXXXXXXXX): the planner compares
        # numbers, not notations.
        return [core.PbxUser.from_mango(item) for item in items]

    def pbx_group_extensions(self):
        """{extension: label} of the PBX groups: numbers no person may be given."""
        if self.pbx_client is None:
            return {}
        return {
            str(group["extension"]): f"{group.get('name') or ''} ({group.get('id')})"
            for group in self.pbx_client.groups()
            if group.get("extension")
        }
