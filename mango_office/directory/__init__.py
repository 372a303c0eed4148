"""Directory (Active Directory / OpenLDAP) → Odoo users, employees and Mango PBX users.

Two halves, split so that every decision is tested without a server or a database:

* reading: :mod:`.reader` (ldap3) turns a directory into
  :class:`DirectoryEntry` values keyed by an immutable anchor (AD ``objectGUID``,
  OpenLDAP ``entryUUID``), with a completeness flag and a delta watermark;
* planning: :func:`build_plan` (:mod:`.planner`), pure, compares those entries with the records the
  sync already linked and returns a :class:`Plan` (creates, field-by-field updates,
  reactivations, archives, role grants/revocations, PBX operations, held items). The
  Odoo addon previews it or applies it in batches.

API summary (the contract ``mango_ldap`` codes against)
=======================================================

Reading: ``DirectoryReader(config)``, a context manager.

- ``DirectoryConfig(servers, bind_dn="", bind_password="", kind="ad"|"openldap",
  bases=(), user_filter="", root_filter=None, attributes=(), group_dns=(),
  group_bases=(), ca_pem=None, ca_file=None, verify_certificate=True,
  check_hostname=True, page_size=500, timeout=10, clock_skew=300)``.

  ``servers`` is the ordered failover list: ``DirectoryServer(host, port=None,
  security="ldaps"|"starttls"|"plain")`` or URIs ``ldaps://h:636``,
  ``ldap+starttls://h:389``, ``ldap://h:389`` (plain). ``bases``: ``SearchBase(dn,
  scope="subtree"|"onelevel"|"base")`` or DN strings. The users read are
  ``(&<root_filter><user_filter>)``: the root filter (preset default) says what a
  person is in this directory, the user filter narrows who is synced. ``group_dns``:
  the role-mapping group DNs whose nested membership is resolved (AD: matching rule
  in chain; OpenLDAP: iterative over groupOfNames/groupOfUniqueNames).
  ``config.scope_fingerprint()`` changes with kind/bases/scopes/filters: pass
  ``filter_changed=True`` to the planner on the next run.
- ``reader.test_connection() -> ConnectionReport(ok, server, security, tls_version,
  bound_as, match_count, warnings, error)``; ``warning_codes``, ``failure`` and
  ``failures`` carry the same as codes and parts, for a caller that words them in
  its reader's language.
- ``reader.full_scan(progress=None)`` and ``reader.delta_scan(watermark,
  progress=None)`` return a ``ScanResult``; a delta escalates to a full scan when the DC
  changed or a resolved group changed (``result.escalated`` says why, and
  ``result.escalation`` / ``escalated_group`` in words a caller can translate). Server failures
  never raise here: they give ``complete=False`` and ``errors``. Save
  ``result.watermark`` (``Watermark.to_json()`` / ``from_json()``) only when
  ``complete`` and the apply succeeded.
- ``reader.confirm_departures(anchors)`` → ``{anchor: "absent" | "out_of_scope" |
  "disabled" | "present" | "error"}``; ``reader.lookup(anchor)`` → entry or None.
  Errors: ``DirectoryError`` > ``DirectoryConnectionError`` >
  ``DirectoryCertificateError``; ``DirectoryBindError``; ``DirectorySearchError`` >
  ``DirectoryIncompleteError``.

Planning: ``build_plan(entries, linked, settings, *, mode="full", scan_complete=True,
pbx_users=(), odoo_users=(), confirmations=None, filter_changed=False,
approved_departures=(), missing_groups=(), now=None, password_factory=None,
reserved_extensions=None)``,
``plan_from_scan(scan, linked, settings, **kw)`` and ``read_and_plan(reader, linked,
settings, watermark=None, **kw) -> (scan, plan)`` (scan, plan, GUID lookups, plan).

- ``LinkedRecord(anchor, user_id, employee_id, active, archived_by_sync, values={target:
  current}, roles, sync_roles, pbx_user_id, sip_logins, dn)``; targets are
  ``user.<field>``, ``employee.<field>``, ``pbx.<field>`` and ``extension``.
- ``SyncSettings(field_mappings, role_mappings, extension=ExtensionPolicy(),
  deletion=DeletionPolicy(), pbx=PbxPolicy(), protected_user_ids, protected_anchors,
  link_existing="none"|"login"|"email", create_employees=True, default_region="RU")``;
  ``FieldMapping(attribute, target, transforms=("first", "trim"),
  rule="always"|"create_only"|"when_empty"|"ignore")``; ``RoleMapping(group_dn,
  groups=(xmlids), mango_role=None)``.
- ``Plan``: ``creates``, ``links``, ``updates`` (``FieldChange(target, old, new)``),
  ``reactivations``, ``archives``, ``role_changes`` (store ``sync_roles``), ``pbx``
  (``PbxOperation(op, anchor, key, pbx_user_id, payload, after)``, op in link,
  member_create, member_update, member_delete, sip_create), ``held``, ``skipped``,
  ``needs_lookup``, ``requires_confirmation``, ``summary()``,
  ``to_dict(include_secrets=False)``.

Departures take two passes: plan → ``reader.confirm_departures(plan.needs_lookup)`` →
plan again with ``confirmations``.

Where each part lives (this file only re-exports them, so that
``from mango_office.directory import X`` is the one import a caller needs):

- :mod:`.values`: plain values out of LDAP attributes (private to the package);
- :mod:`.identity`: anchors (GUIDs), DNs and AD account state;
- :mod:`.entries`: ``DirectoryEntry``, ``Watermark``, ``ScanResult``;
- :mod:`.settings`: mapping lines, role mappings, policies, ``SyncSettings``;
- :mod:`.presets`: what AD and OpenLDAP offer out of the box;
- :mod:`.records`: what Odoo and Mango hold now (``LinkedRecord``, ``PbxUser``,
  ``OdooUser``);
- :mod:`.plan`: the plan and its items;
- :mod:`.credentials`: SIP logins and passwords (Mango's rules: :mod:`mango_office.rules`);
- :mod:`.transforms`: attribute values → one field value;
- :mod:`.claims`: extension claims, settled once a run;
- :mod:`.planner`: ``build_plan``, ``PagedPlanner``, ``read_and_plan``;
- :mod:`.registries`: what the planner remembers across pages (``Registries``,
  ``MemoryRegistries``; the database one lives in ``mango_ldap``);
- :mod:`.errors`, :mod:`.config`, :mod:`.tls`, :mod:`.reader`: reading with ldap3.
"""

from ..rules import is_valid_mango_password, is_valid_sip_login
from .claims import (
    ExtensionClaim,
    collect_claims,
    conflict_message,
    generalized_time_key,
)
from .config import (
    SCOPES,
    WARNING_TEXTS,
    DirectoryConfig,
    DirectoryServer,
    SearchBase,
)
from .credentials import generate_sip_password, sip_login_for
from .entries import DirectoryEntry, ScanResult, Watermark
from .errors import (
    DirectoryBindError,
    DirectoryCertificateError,
    DirectoryConnectionError,
    DirectoryError,
    DirectoryIncompleteError,
    DirectorySearchError,
)
from .identity import (
    UAC_ACCOUNTDISABLE,
    ad_account_disabled,
    filetime_to_datetime,
    guid_to_ad_bytes,
    normalize_dn,
    normalize_guid,
)
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
from .planner import (
    REQUIRED_TARGETS,
    PagedPlanner,
    build_plan,
    plan_from_scan,
    read_and_plan,
)
from .presets import KINDS, PRESETS, DirectoryPreset
from .registries import MemoryRegistries, Registries
from .reader import (
    MATCHING_RULE_IN_CHAIN,
    ConnectionReport,
    DirectoryReader,
    PagedScan,
)
from .records import LinkedRecord, OdooUser, PbxUser
from .settings import (
    PBX_FIELDS,
    SYNC_RULES,
    TRANSFORMS,
    DeletionPolicy,
    ExtensionPolicy,
    FieldMapping,
    PbxPolicy,
    RoleMapping,
    SyncSettings,
    settings_fingerprint,
)
from .transforms import apply_transforms

__all__ = [
    "MemoryRegistries",
    "Registries",
    "KINDS",
    "MATCHING_RULE_IN_CHAIN",
    "PBX_FIELDS",
    "PRESETS",
    "REQUIRED_TARGETS",
    "SCOPES",
    "SYNC_RULES",
    "TRANSFORMS",
    "UAC_ACCOUNTDISABLE",
    "WARNING_TEXTS",
    "ConnectionReport",
    "DeletionPolicy",
    "DirectoryBindError",
    "DirectoryCertificateError",
    "DirectoryConfig",
    "DirectoryConnectionError",
    "DirectoryEntry",
    "DirectoryError",
    "DirectoryIncompleteError",
    "DirectoryPreset",
    "DirectoryReader",
    "DirectorySearchError",
    "DirectoryServer",
    "ExtensionClaim",
    "ExtensionPolicy",
    "FieldChange",
    "FieldMapping",
    "Held",
    "LinkedRecord",
    "OdooUser",
    "PagedPlanner",
    "PagedScan",
    "PbxOperation",
    "PbxPolicy",
    "PbxUser",
    "Plan",
    "PlannedArchive",
    "PlannedCreate",
    "PlannedLink",
    "PlannedReactivation",
    "PlannedUpdate",
    "RoleChange",
    "RoleMapping",
    "ScanResult",
    "SearchBase",
    "SyncSettings",
    "Watermark",
    "ad_account_disabled",
    "apply_transforms",
    "build_plan",
    "collect_claims",
    "conflict_message",
    "filetime_to_datetime",
    "generalized_time_key",
    "generate_sip_password",
    "guid_to_ad_bytes",
    "is_valid_mango_password",
    "is_valid_sip_login",
    "normalize_dn",
    "normalize_guid",
    "plan_from_scan",
    "read_and_plan",
    "settings_fingerprint",
    "sip_login_for",
]
