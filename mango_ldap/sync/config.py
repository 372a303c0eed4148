"""Config adapter: a mango.ldap.directory record as the core's settings.

The reading and planning in :mod:`mango_office.directory` know nothing of Odoo;
this module is the one place that translates a directory record into their
terms: the reader's ``DirectoryConfig`` (servers, TLS, bases, filters) and the
planner's ``SyncSettings`` (mappings, role mapping, extension, deletion and PBX
policies). The sync, the connection check and sign-in all connect through
:func:`reader_config`, so they read the directory alike.
"""

from odoo.exceptions import UserError

from mango_office import directory as core


def reader_config(directory):
    """``DirectoryConfig`` for a mango.ldap.directory record."""
    d = directory.sudo()
    servers = [
        core.DirectoryServer(server.host, server.effective_port, security=d.transport)
        for server in d.server_ids
    ]
    attributes = {m.attribute for m in d.mapping_ids}
    for name in (d.login_attribute, d.extension_attribute):
        if name:
            attributes.add(name)
    return core.DirectoryConfig(
        servers=servers,
        bind_dn=d.bind_dn or "",
        bind_password=d.bind_password or "",
        kind="ad" if d.directory_type == "active_directory" else "openldap",
        bases=tuple(core.SearchBase(b.dn, scope=b.scope) for b in d.base_dn_ids),
        user_filter=d.user_filter or "",
        root_filter=d.root_filter or None,
        attributes=tuple(sorted(attributes)),
        # a page of entries lives until it is applied: only what the plan maps
        keep_attributes=tuple(sorted(attributes)),
        group_dns=tuple(
            dict.fromkeys(
                d.role_mapping_ids.mapped("group_dn") + list(d._mango_pbx_group_dns())
            )
        ),
        ca_pem=d.ca_certificate or None,
        verify_certificate=d.verify_certificate,
        timeout=d.timeout or 15,
        page_size=min(max(d.page_size or 500, 1), 5000),
    )


def directory_reader(directory):
    if not directory.server_ids:
        raise UserError(directory.env._("Add at least one directory server."))
    if not directory.base_dn_ids:
        raise UserError(directory.env._("Add at least one search base DN."))
    return core.DirectoryReader(reader_config(directory))


class SyncConfig:
    """The run's settings for the planner, and Odoo groups as the planner's
    role tokens (``module.xml_id`` or ``res.groups:ID``) and back.

    Part of :class:`~.run.DirectorySync`: uses ``self.directory`` and ``self.env``.
    """

    def _group_token(self, group):
        # one lookup per group and run: a 10,000-person re-sync asks per grant
        cache = self.__dict__.setdefault("_token_cache", {})
        if group.id not in cache:
            cache[group.id] = (
                group.get_external_id().get(group.id) or f"res.groups:{group.id}"
            )
        return cache[group.id]

    def _group_from_token(self, token):
        cache = self.__dict__.setdefault("_group_cache", {})
        if token not in cache:
            if token.startswith("res.groups:"):
                group = (
                    self.env["res.groups"].browse(int(token.split(":", 1)[1])).exists()
                )
            else:
                group = self.env.ref(token, raise_if_not_found=False)
            cache[token] = group.id if group else None
        group_id = cache[token]
        return self.env["res.groups"].browse(group_id or [])

    def settings(self):
        d = self.directory
        mappings = [
            core.FieldMapping(
                d.login_attribute,
                "user.login",
                transforms=("first", "trim", "lower"),
                rule="always",
            )
        ]
        for mapping in d.mapping_ids:
            if mapping.target == "pbx" and mapping.pbx_field == "extension":
                target = "extension"
            else:
                target = mapping._mango_target
            mappings.append(
                core.FieldMapping(
                    mapping.attribute,
                    target,
                    transforms=mapping.TRANSFORM_CHAINS[mapping.transform],
                    rule=mapping.rule,
                )
            )
        if (
            d.extension_policy in ("attribute", "attribute_or_range")
            and d.extension_attribute
        ):
            if not any(m.target == "extension" for m in mappings):
                mappings.append(
                    core.FieldMapping(
                        d.extension_attribute,
                        "extension",
                        transforms=("first", "digits"),
                        rule="always",
                    )
                )
        role_mappings = []
        for line in d.role_mapping_ids:
            role_mappings.append(
                core.RoleMapping(
                    line.group_dn,
                    groups=tuple(self._group_token(g) for g in line.group_ids),
                    mango_role=line.pbx_role_option_id.value or None,
                )
            )
        pbx_enabled = bool(d.account_id and d.create_pbx_users)
        return core.SyncSettings(
            field_mappings=tuple(mappings),
            role_mappings=tuple(role_mappings),
            extension=core.ExtensionPolicy(
                source=d.extension_policy,
                range_start=d.extension_range_from,
                range_end=d.extension_range_to,
            ),
            deletion=core.DeletionPolicy(
                max_count=d.max_removals if d.max_removals else None,
                max_percent=d.max_removals_percent if d.max_removals_percent else None,
                require_confirmation=True,
            ),
            pbx=core.PbxPolicy(
                enabled=pbx_enabled,
                sip=d.create_sip_accounts,
                sip_domain=d.sip_domain_option_id.value or None,
                default_access_role=d.pbx_role_option_id.value or None,
                on_departure="delete" if d.departed_pbx_action == "delete" else "keep",
                require_groups=d._mango_pbx_group_dns(),
            ),
            protected_user_ids=frozenset(d.protected_user_ids.ids),
            link_existing=d.link_existing,
            create_employees=d.create_employees,
        )
