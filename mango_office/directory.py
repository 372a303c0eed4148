"""Directory (Active Directory / OpenLDAP) → Odoo users, employees and Mango PBX users.

Two halves, split so that every decision is tested without a server or a database:

* reading: :mod:`mango_office.ldap_reader` (ldap3) turns a directory into
  :class:`DirectoryEntry` values keyed by an immutable anchor (AD ``objectGUID``,
  OpenLDAP ``entryUUID``), with a completeness flag and a delta watermark;
* planning: :func:`build_plan` here, pure, compares those entries with the records the
  sync already linked and returns a :class:`Plan` (creates, field-by-field updates,
  reactivations, archives, role grants/revocations, PBX operations, held items). The
  Odoo addon previews it or applies it in batches.

API summary (the contract ``mango_ldap`` codes against)
=======================================================

Reading: ``DirectoryReader(config)``, a context manager (the reader's names are
re-exported here lazily).

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
"""

import base64
import contextlib
import datetime as dt
import functools
import hashlib
import json
import re
import secrets
import sys
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import NamedTuple

from . import phones

SYNC_RULES = ("always", "create_only", "when_empty", "ignore")
TRANSFORMS = ("first", "joined", "trim", "lower", "upper", "phone", "digits")
SCOPES = ("subtree", "onelevel", "base")
KINDS = ("ad", "openldap")

# userAccountControl ACCOUNTDISABLE (MS-ADTS 2.2.16)
UAC_ACCOUNTDISABLE = 0x2
# accountExpires "never": 0 or the largest 64-bit value (MS-ADA1 accountExpires)
_NEVER_EXPIRES = {0, 0x7FFFFFFFFFFFFFFF}
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
MATCHING_RULE_IN_CHAIN = "1.2.840.113556.1.4.1941"

# Targets Odoo or Mango cannot do without: the directory blanking them is ignored, not
# applied.
REQUIRED_TARGETS = frozenset({"user.login", "user.name", "pbx.name", "extension"})
PBX_FIELDS = ("name", "email", "mobile", "department", "position")


# --------------------------------------------------------------------------------------
# identifiers, DNs, account state
# --------------------------------------------------------------------------------------


def normalize_guid(value):
    """Canonical anchor: lower-case UUID text.

    AD sends ``objectGUID`` as 16 bytes in Microsoft's mixed-endian layout
    (``bytes_le``); OpenLDAP's ``entryUUID`` is already text. Braced text (ldap3's
    formatted output), raw bytes as 32 hex digits (ldbsearch/PowerShell dumps) and
    base64 (LDIF exports) are accepted too so the same person never gets two keys.
    """
    if value is None:
        raise ValueError("empty directory identifier")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        if len(raw) == 16:
            return str(uuid.UUID(bytes_le=raw))
        value = raw.decode("ascii", "strict")
    text = str(value).strip()
    if not text:
        raise ValueError("empty directory identifier")
    if re.fullmatch(r"[0-9a-fA-F]{32}", text):
        return str(uuid.UUID(bytes_le=bytes.fromhex(text)))
    with contextlib.suppress(ValueError):
        return str(uuid.UUID(text.strip("{}")))
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) == 16:
        return str(uuid.UUID(bytes_le=raw))
    # Directories with other unique-id attributes (nsUniqueId, ipaUniqueID): keep as
    # text.
    return text.lower()


def guid_to_ad_bytes(anchor):
    """The 16 bytes AD stores for an anchor produced by :func:`normalize_guid`."""
    return uuid.UUID(anchor).bytes_le


_DN_SPLIT = re.compile(r"(?<!\\),")


@functools.lru_cache(maxsize=65536)
def normalize_dn(dn):
    """A comparable DN: attribute types and values lower-cased, spaces around separators
    removed.

    DNs are case-insensitive for the attribute types used in practice (cn, ou, dc, uid),
    and directories echo them back with varying case/spacing (``CN=PBX,OU=x`` vs
    ``cn=pbx, ou=x``).
    """
    if not dn:
        return ""
    parts = []
    for rdn in _DN_SPLIT.split(str(dn)):
        pieces = []
        for ava in re.split(r"(?<!\\)\+", rdn):
            if "=" not in ava:
                pieces.append(ava.strip().lower())
                continue
            attr, _sep, val = ava.partition("=")
            pieces.append(f"{attr.strip().lower()}={val.strip().lower()}")
        parts.append("+".join(sorted(pieces)))
    return ",".join(parts)


def filetime_to_datetime(value):
    """AD 100-ns FILETIME (as int or text) → aware datetime, ``None`` for "never"."""
    try:
        ticks = int(value)
    except (TypeError, ValueError):
        return None
    if ticks in _NEVER_EXPIRES or ticks < 0:
        return None
    try:
        return _FILETIME_EPOCH + dt.timedelta(microseconds=ticks // 10)
    except OverflowError:
        return None


def _as_datetime(now):
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if isinstance(now, (int, float)):
        return dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.timezone.utc)
    return now


def ad_account_disabled(attributes, now=None):
    """Why AD considers this account unusable: ``"disabled"``, ``"expired"`` or ``None``.

    ``attributes`` maps lower-case names to value lists (as in :class:`DirectoryEntry`).
    """
    attrs = {str(k).lower(): v for k, v in (attributes or {}).items()}
    uac = _first(attrs.get("useraccountcontrol"))
    if str(uac or "").lstrip("-").isdigit() and int(uac) & UAC_ACCOUNTDISABLE:
        return "disabled"
    expires = filetime_to_datetime(_first(attrs.get("accountexpires")))
    if expires is not None and expires <= _as_datetime(now):
        return "expired"
    return None


def _first(values):
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        return values[0] if values else None
    return values


def _as_list(values):
    if values is None:
        return []
    if isinstance(values, (list, tuple, set, frozenset)):
        return [v for v in values if v is not None]
    return [values]


# --------------------------------------------------------------------------------------
# what the reader produces
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryEntry:
    """One person as read from the directory. ``attributes`` keys are lower-case."""

    anchor: str
    dn: str = ""
    attributes: Mapping = field(default_factory=dict)
    groups: frozenset = frozenset()
    disabled: bool = False
    disabled_reason: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "anchor", normalize_guid(self.anchor))
        # one copy of each attribute name for all entries, not one per entry
        attrs = {
            sys.intern(str(k).lower()): [_text(v) for v in _as_list(vals)]
            for k, vals in (self.attributes or {}).items()
        }
        object.__setattr__(self, "attributes", attrs)
        object.__setattr__(
            self, "groups", frozenset(normalize_dn(g) for g in self.groups or ())
        )
        if self.disabled_reason and not self.disabled:
            object.__setattr__(self, "disabled", True)

    def values(self, name):
        if name.lower() == "dn":
            return [self.dn] if self.dn else []
        return list(self.attributes.get(name.lower(), []))

    def get(self, name, default=None):
        vals = self.values(name)
        return vals[0] if vals else default

    def to_dict(self):
        return {
            "anchor": self.anchor,
            "dn": self.dn,
            "attributes": {k: list(v) for k, v in sorted(self.attributes.items())},
            "groups": sorted(self.groups),
            "disabled": self.disabled,
            "disabled_reason": self.disabled_reason,
        }

    @classmethod
    def from_dict(cls, data, anchor=None):
        if isinstance(data, cls):
            return data
        data = dict(data)
        return cls(
            anchor=data.get("anchor") or anchor,
            dn=data.get("dn", ""),
            attributes=data.get("attributes") or {},
            groups=frozenset(data.get("groups") or ()),
            disabled=bool(data.get("disabled")),
            disabled_reason=data.get("disabled_reason"),
        )


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


@dataclass(frozen=True)
class Watermark:
    """Where the next delta read starts.

    ``usn``: AD ``highestCommittedUSN`` taken *before* the read (uSNChanged is per DC,
    so ``server`` pins the DC's ``dsServiceName``); ``time``: the server's (AD
    ``currentTime``) or, for OpenLDAP, the client's clock at the start of the read, as
    generalized time.
    """

    kind: str  # "ad" | "openldap"
    time: str  # YYYYmmddHHMMSSZ
    usn: int | None = None
    server: str = ""
    fingerprint: str = ""

    def to_dict(self):
        return {
            "kind": self.kind,
            "time": self.time,
            "usn": self.usn,
            "server": self.server,
            "fingerprint": self.fingerprint,
        }

    def to_json(self):
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text):
        if not text:
            return None
        data = json.loads(text) if isinstance(text, str) else dict(text)
        return cls(
            kind=data["kind"],
            time=data["time"],
            usn=data.get("usn"),
            server=data.get("server") or "",
            fingerprint=data.get("fingerprint") or "",
        )


@dataclass
class ScanResult:
    mode: str  # "full" | "delta"
    entries: dict = field(default_factory=dict)
    complete: bool = False
    errors: list = field(default_factory=list)
    watermark: Watermark | None = None
    server: str = ""
    pages: int = 0
    missing_groups: tuple = ()
    escalated: str | None = None
    # why a delta read became a full one, for callers that word it themselves:
    # "no_watermark", "settings_changed" or "group_changed" (then escalated_group)
    escalation: str | None = None
    escalated_group: str | None = None
    duration: float = 0.0
    # entries read, also when they were handed out page by page and not kept
    count: int = 0

    def to_dict(self):
        return {
            "mode": self.mode,
            "entries": max(len(self.entries), self.count),
            "complete": self.complete,
            "errors": list(self.errors),
            "watermark": self.watermark.to_dict() if self.watermark else None,
            "server": self.server,
            "pages": self.pages,
            "missing_groups": list(self.missing_groups),
            "escalated": self.escalated,
            "escalation": self.escalation,
            "escalated_group": self.escalated_group,
            "duration": round(self.duration, 3),
        }


# --------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------


def _tuple(value):
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    return tuple(value)


@dataclass(frozen=True)
class FieldMapping:
    attribute: str
    target: str
    transforms: tuple = ("first", "trim")
    rule: str = "always"
    separator: str = " "

    def __post_init__(self):
        object.__setattr__(
            self, "transforms", _tuple(self.transforms) or ("first", "trim")
        )
        target = _canonical_target(self.target)
        object.__setattr__(self, "target", target)
        if self.rule not in SYNC_RULES:
            raise ValueError(
                f"unknown sync rule {self.rule!r} (expected one of "
                f"{', '.join(SYNC_RULES)})"
            )
        unknown = [t for t in self.transforms if t not in TRANSFORMS]
        if unknown:
            raise ValueError(
                f"unknown transform {unknown[0]!r} (expected one of "
                f"{', '.join(TRANSFORMS)})"
            )
        if not self.attribute:
            raise ValueError("a field mapping needs a directory attribute")


def _canonical_target(target):
    target = (target or "").strip()
    # One extension per person, shown in Odoo and on the PBX: both spellings mean the
    # same thing.
    if target in ("pbx.extension", "user.mango_extension"):
        return "extension"
    if target == "extension":
        return target
    prefix, _sep, name = target.partition(".")
    if prefix not in ("user", "employee", "pbx") or not name:
        raise ValueError(
            f"mapping target {target!r} must look like user.<field>, "
            "employee.<field>, pbx.<field> or extension"
        )
    if prefix == "pbx" and name not in PBX_FIELDS + ("access_role_id",):
        raise ValueError(
            f"PBX field {name!r} is not one Mango accepts ({', '.join(PBX_FIELDS)})"
        )
    return target


@dataclass(frozen=True)
class RoleMapping:
    group_dn: str
    groups: tuple = ()
    mango_role: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "groups", _tuple(self.groups))
        if self.mango_role is not None:
            object.__setattr__(self, "mango_role", str(self.mango_role))

    @property
    def key(self):
        return normalize_dn(self.group_dn)


@dataclass(frozen=True)
class ExtensionPolicy:
    source: str = "attribute_or_range"  # attribute | range | attribute_or_range | none
    range_start: int = 100
    range_end: int = 999
    rule: str | None = (
        None  # None: the rule of the "extension" mapping line, else create_only
    )

    def __post_init__(self):
        if self.source not in ("attribute", "range", "attribute_or_range", "none"):
            raise ValueError(f"unknown extension source {self.source!r}")
        if self.source != "attribute" and self.range_start > self.range_end:
            raise ValueError("extension range start is above its end")


@dataclass(frozen=True)
class DeletionPolicy:
    max_count: int | None = None
    max_percent: float | None = None
    require_confirmation: bool = True


@dataclass(frozen=True)
class PbxPolicy:
    enabled: bool = False
    sip: bool = True
    sip_domain: str | None = None
    default_access_role: str | None = None
    on_departure: str = "delete"  # delete | keep
    require_groups: tuple = ()
    match_existing: bool = True

    def __post_init__(self):
        object.__setattr__(self, "require_groups", _tuple(self.require_groups))
        if self.on_departure not in ("delete", "keep"):
            raise ValueError("on_departure must be 'delete' or 'keep'")


@dataclass(frozen=True)
class SyncSettings:
    field_mappings: tuple = ()
    role_mappings: tuple = ()
    extension: ExtensionPolicy = ExtensionPolicy()
    deletion: DeletionPolicy = DeletionPolicy()
    pbx: PbxPolicy = PbxPolicy()
    protected_user_ids: frozenset = frozenset()
    protected_anchors: frozenset = frozenset()
    link_existing: str = "none"  # none | login | email
    create_employees: bool = True
    default_region: str = "RU"

    def __post_init__(self):
        object.__setattr__(self, "field_mappings", tuple(self.field_mappings))
        object.__setattr__(self, "role_mappings", tuple(self.role_mappings))
        object.__setattr__(
            self, "protected_user_ids", frozenset(self.protected_user_ids)
        )
        object.__setattr__(
            self,
            "protected_anchors",
            frozenset(normalize_guid(a) for a in self.protected_anchors),
        )
        if self.link_existing not in ("none", "login", "email"):
            raise ValueError("link_existing must be 'none', 'login' or 'email'")

    @property
    def managed_roles(self):
        return frozenset(g for line in self.role_mappings for g in line.groups)

    def rule_for(self, target):
        for line in self.field_mappings:
            if line.target == target:
                return line.rule
        return None

    def group_dns(self):
        """Every group DN whose (nested) membership the reader must resolve."""
        dns = [line.group_dn for line in self.role_mappings] + list(
            self.pbx.require_groups
        )
        seen, out = set(), []
        for dn in dns:
            if normalize_dn(dn) not in seen:
                seen.add(normalize_dn(dn))
                out.append(dn)
        return tuple(out)

    def extension_lines(self):
        """The mapping lines that give a person's extension, in fallback order."""
        return tuple(
            line
            for line in self.field_mappings
            if line.target == "extension" and line.rule != "ignore"
        )

    @property
    def extension_from_directory(self):
        """Whether a directory attribute says who has which extension: then the
        people it gives the same number are settled before any page is planned
        (see :class:`ExtensionClaim`)."""
        return self.extension.source in ("attribute", "attribute_or_range") and bool(
            self.extension_lines()
        )

    def claim_attributes(self):
        """``(extension attributes, other attributes)`` a read of the extension
        claims needs: an entry claims a number when it has one of the first; the
        others name the claimant (login, name, e-mail)."""
        wanted = ("user.login", "user.name", "user.email", "pbx.email")
        extension = tuple(
            dict.fromkeys(
                line.attribute
                for line in self.extension_lines()
                if line.attribute.lower() != "dn"
            )
        )
        others = tuple(
            dict.fromkeys(
                line.attribute
                for line in self.field_mappings
                if line.target in wanted
                and line.rule != "ignore"
                and line.attribute.lower() != "dn"
                and line.attribute not in extension
            )
        )
        return extension, others

    def attributes(self):
        """Every attribute the mapping lines read (give them to
        ``DirectoryConfig.attributes``)."""
        return tuple(
            sorted(
                {
                    line.attribute
                    for line in self.field_mappings
                    if line.attribute.lower() != "dn"
                }
            )
        )


@dataclass(frozen=True)
class DirectoryPreset:
    kind: str
    anchor_attribute: str
    login_attribute: str
    root_filter: str
    group_filter: str
    attributes: tuple
    field_mappings: tuple
    # when the entry was created: the tie-breaker between people the directory
    # gives the same extension (see ExtensionClaim)
    created_attribute: str = ""


PRESETS = {
    "ad": DirectoryPreset(
        kind="ad",
        anchor_attribute="objectGUID",
        login_attribute="sAMAccountName",
        root_filter="(&(objectCategory=person)(objectClass=user))",
        group_filter="(objectClass=group)",
        attributes=(
            "objectGUID",
            "sAMAccountName",
            "userPrincipalName",
            "displayName",
            "cn",
            "givenName",
            "sn",
            "mail",
            "telephoneNumber",
            "ipPhone",
            "mobile",
            "title",
            "department",
            "company",
            "employeeID",
            "userAccountControl",
            "accountExpires",
            "memberOf",
            "whenChanged",
            "uSNChanged",
        ),
        field_mappings=(
            FieldMapping("sAMAccountName", "user.login", ("first", "trim", "lower")),
            FieldMapping("displayName", "user.name"),
            FieldMapping("cn", "user.name"),
            FieldMapping("mail", "user.email", ("first", "trim", "lower")),
            FieldMapping("telephoneNumber", "employee.work_phone", ("first", "phone")),
            FieldMapping("mobile", "employee.mobile_phone", ("first", "phone")),
            FieldMapping("mobile", "pbx.mobile", ("first", "phone")),
            FieldMapping("title", "employee.job_title"),
            FieldMapping("title", "pbx.position"),
            FieldMapping("department", "pbx.department"),
            FieldMapping("ipPhone", "extension", ("first", "digits"), rule="always"),
        ),
        created_attribute="whenCreated",
    ),
    "openldap": DirectoryPreset(
        kind="openldap",
        anchor_attribute="entryUUID",
        login_attribute="uid",
        root_filter="(objectClass=inetOrgPerson)",
        group_filter="(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        attributes=(
            "entryUUID",
            "uid",
            "cn",
            "displayName",
            "givenName",
            "sn",
            "mail",
            "telephoneNumber",
            "mobile",
            "title",
            "ou",
            "departmentNumber",
            "employeeNumber",
            "memberOf",
            "modifyTimestamp",
        ),
        field_mappings=(
            FieldMapping("uid", "user.login", ("first", "trim", "lower")),
            FieldMapping("displayName", "user.name"),
            FieldMapping("cn", "user.name"),
            FieldMapping("mail", "user.email", ("first", "trim", "lower")),
            FieldMapping("telephoneNumber", "employee.work_phone", ("first", "phone")),
            FieldMapping("mobile", "employee.mobile_phone", ("first", "phone")),
            FieldMapping("mobile", "pbx.mobile", ("first", "phone")),
            FieldMapping("title", "employee.job_title"),
            FieldMapping("title", "pbx.position"),
            FieldMapping("ou", "pbx.department"),
        ),
        created_attribute="createTimestamp",
    ),
}


# --------------------------------------------------------------------------------------
# what Odoo and Mango hold now
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkedRecord:
    """A directory identity the sync created or linked, with what Odoo/Mango hold."""

    anchor: str
    user_id: int | None = None
    employee_id: int | None = None
    active: bool = True
    archived_by_sync: bool = False
    values: Mapping = field(default_factory=dict)
    roles: frozenset = frozenset()
    sync_roles: frozenset = frozenset()
    pbx_user_id: str | None = None
    sip_logins: tuple = ()
    dn: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "anchor", normalize_guid(self.anchor))
        # "pbx.extension" stays apart here: it is what Mango has now, "extension" what
        # Odoo has.
        values = {
            ("extension" if k == "user.mango_extension" else k): v
            for k, v in (self.values or {}).items()
        }
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "roles", frozenset(self.roles or ()))
        object.__setattr__(self, "sync_roles", frozenset(self.sync_roles or ()))
        object.__setattr__(self, "sip_logins", tuple(self.sip_logins or ()))
        if self.pbx_user_id not in (None, "", False):
            object.__setattr__(self, "pbx_user_id", str(self.pbx_user_id))
        else:
            object.__setattr__(self, "pbx_user_id", None)


@dataclass(frozen=True)
class PbxUser:
    user_id: str
    extension: str | None = None
    name: str | None = None
    email: str | None = None
    sip_logins: tuple = ()
    mobile: str | None = None
    department: str | None = None
    position: str | None = None
    access_role_id: str | None = None

    @classmethod
    def from_mango(cls, item):
        """One element of ``config/users/request``'s ``users`` list (ext_fields
        general.user_id, general.sips)."""
        general = item.get("general") or {}
        telephony = item.get("telephony") or {}
        sips = []
        for sip in general.get("sips") or []:
            number = sip.get("number") if isinstance(sip, dict) else sip
            if number:
                sips.append(str(number).removeprefix("sip:"))
        role = general.get("access_role_id")
        return cls(
            user_id=str(general.get("user_id") or ""),
            extension=_clean(telephony.get("extension")),
            name=_clean(general.get("name")),
            email=_clean(general.get("email")),
            sip_logins=tuple(sips),
            mobile=_clean(general.get("mobile")),
            department=_clean(general.get("department")),
            position=_clean(general.get("position")),
            access_role_id=str(role) if role not in (None, "") else None,
        )

    def field(self, name):
        return getattr(self, name, None)


@dataclass(frozen=True)
class OdooUser:
    """An Odoo user not linked to this directory (login/e-mail/extension collisions,
    adoption). Include archived users: Odoo logins are unique across them too."""

    user_id: int
    login: str
    email: str | None = None
    extension: str | None = None
    active: bool = True
    roles: frozenset = frozenset()
    employee_id: int | None = None


def _clean(value):
    if value is None or value is False:
        return None
    text = str(value).strip()
    return text or None


# --------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------


def _plain(value):
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {
            str(k): _plain(v)
            for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
        }
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class FieldChange:
    target: str
    old: object
    new: object


@dataclass(frozen=True)
class PlannedCreate:
    anchor: str
    dn: str
    login: str
    values: Mapping
    roles: tuple = ()
    mango_role: str | None = None
    extension: str | None = None


@dataclass(frozen=True)
class PlannedLink:
    """Adopt an Odoo user that existed before the sync (settings.link_existing)."""

    anchor: str
    dn: str
    user_id: int
    employee_id: int | None
    matched_by: str
    changes: tuple = ()


@dataclass(frozen=True)
class PlannedUpdate:
    anchor: str
    user_id: int | None
    employee_id: int | None
    changes: tuple = ()


@dataclass(frozen=True)
class PlannedReactivation:
    anchor: str
    user_id: int | None
    employee_id: int | None


@dataclass(frozen=True)
class PlannedArchive:
    anchor: str
    user_id: int | None
    employee_id: int | None
    reason: str  # absent | out_of_scope | disabled | expired


@dataclass(frozen=True)
class RoleChange:
    anchor: str
    user_id: int | None
    grant: tuple = ()
    revoke: tuple = ()
    sync_roles: tuple = ()


@dataclass(frozen=True)
class PbxOperation:
    op: str  # link | member_create | member_update | member_delete | sip_create
    anchor: str
    key: str
    pbx_user_id: str | None = None
    payload: Mapping = field(default_factory=dict)
    after: str | None = None

    def to_dict(self, include_secrets=False):
        data = _plain(self)
        if not include_secrets and "password" in data["payload"]:
            data["payload"]["password"] = "********"
        return data


@dataclass(frozen=True)
class Held:
    anchor: str
    # archive | revoke | create | update | pbx | link | reactivate | extension
    action: str
    reason: str
    message: str
    # what a caller needs to word the message itself (extension conflicts: the
    # number, the people and PBX objects involved, who kept it and why)
    details: Mapping = field(default_factory=dict)


@dataclass
class Plan:
    mode: str = "full"
    complete: bool = True
    creates: list = field(default_factory=list)
    links: list = field(default_factory=list)
    updates: list = field(default_factory=list)
    reactivations: list = field(default_factory=list)
    archives: list = field(default_factory=list)
    role_changes: list = field(default_factory=list)
    pbx: list = field(default_factory=list)
    held: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (anchor, reason)
    needs_lookup: list = field(default_factory=list)
    requires_confirmation: bool = False
    unchanged: int = 0
    warnings: list = field(default_factory=list)

    def summary(self):
        return {
            "creates": len(self.creates),
            "links": len(self.links),
            "updates": len(self.updates),
            "reactivations": len(self.reactivations),
            "archives": len(self.archives),
            "role_changes": len(self.role_changes),
            "pbx": len(self.pbx),
            "held": len(self.held),
            "skipped": len(self.skipped),
            "unchanged": self.unchanged,
        }

    @property
    def is_empty(self):
        return not (
            self.creates
            or self.links
            or self.updates
            or self.reactivations
            or self.archives
            or self.role_changes
            or self.pbx
        )

    def held_for(self, anchor, action=None):
        return [
            h
            for h in self.held
            if h.anchor == anchor and (action is None or h.action == action)
        ]

    def to_dict(self, include_secrets=False):
        return {
            "mode": self.mode,
            "complete": self.complete,
            "summary": self.summary(),
            "requires_confirmation": self.requires_confirmation,
            "needs_lookup": sorted(self.needs_lookup),
            "creates": [_plain(x) for x in self.creates],
            "links": [_plain(x) for x in self.links],
            "updates": [_plain(x) for x in self.updates],
            "reactivations": [_plain(x) for x in self.reactivations],
            "archives": [_plain(x) for x in self.archives],
            "role_changes": [_plain(x) for x in self.role_changes],
            "pbx": [op.to_dict(include_secrets) for op in self.pbx],
            "held": [_plain(x) for x in self.held],
            "skipped": [list(x) for x in self.skipped],
            "unchanged": self.unchanged,
            "warnings": list(self.warnings),
        }

    def to_json(self, include_secrets=False):
        return json.dumps(
            self.to_dict(include_secrets),
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )


# --------------------------------------------------------------------------------------
# Mango credentials rules
# --------------------------------------------------------------------------------------


def is_valid_mango_password(password):
    """Mango result 3120: at least 8 characters with lower, upper case and digits."""
    return (
        isinstance(password, str)
        and len(password) >= 8
        and any(c.islower() for c in password)
        and any(c.isupper() for c in password)
        and any(c.isdigit() for c in password)
    )


def generate_sip_password(length=16):
    # No look-alike characters: the password is read off the screen once and typed into
    # a phone.
    lower = "abcdefghijkmnpqrstuvwxyz"
    upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    digits = "23456789"
    pool = lower + upper + digits
    length = max(length, 8)
    while True:
        chars = [secrets.choice(lower), secrets.choice(upper), secrets.choice(digits)]
        chars += [secrets.choice(pool) for _i in range(length - 3)]
        secrets.SystemRandom().shuffle(chars)
        password = "".join(chars)
        if is_valid_mango_password(password):
            return password


_SIP_LOGIN_CHARS = re.compile(r"[^a-z0-9]")


def is_valid_sip_login(login):
    """Mango result 3121: ≥4 characters; starts with a Latin letter, or starts with a
    digit but
    contains a letter, or is all digits starting with ``000``."""
    if (
        not isinstance(login, str)
        or len(login) < 4
        or not re.fullmatch(r"[A-Za-z0-9._-]+", login)
    ):
        return False
    if login[0].isascii() and login[0].isalpha():
        return True
    if login[0].isdigit():
        if any(c.isascii() and c.isalpha() for c in login):
            return True
        return login.isdigit() and login.startswith("000")
    return False


_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "-",
            "y",
            "-",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)


def _ascii_slug(text):
    text = (text or "").lower()
    out = []
    for char in text:
        repl = _CYRILLIC.get(char)
        if repl is not None:
            out.append("" if repl == "-" else repl)
        else:
            out.append(
                unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            )
    return _SIP_LOGIN_CHARS.sub("", "".join(out))


class _SipTaken(set):
    """Already-normalised SIP login locals (lower case, no domain): no per-call rebuild."""


def sip_login_for(login, extension, taken=()):
    """A SIP login Mango accepts (3121) that nobody on the PBX uses yet.

    The person's own login reads best in a softphone; the extension makes it unique and
    valid when the login is short, numeric or not transliterable.
    """
    if not isinstance(taken, _SipTaken):
        taken = {t.lower().split("@")[0] for t in taken}
    local = re.split(r"[@\\]", login or "")[-1 if "\\" in (login or "") else 0]
    base = _ascii_slug(local)
    ext = re.sub(r"\D", "", str(extension or ""))
    candidates = []
    if base:
        candidates.append(base)
        if ext:
            candidates.append(f"{base}{ext}")
    if ext:
        candidates.append(f"sip{ext}")
    candidates.append("sipuser")
    for cand in candidates:
        if is_valid_sip_login(cand) and cand not in taken:
            return cand
    stem = next(c for c in candidates if is_valid_sip_login(c))
    n = 2
    while f"{stem}{n}" in taken:
        n += 1
    return f"{stem}{n}"


# --------------------------------------------------------------------------------------
# extension claims
# --------------------------------------------------------------------------------------

_GENERALIZED = re.compile(
    r"(\d{14})(?:[.,](\d{1,6}))?\d*(Z|[+-]\d{4})?$", re.IGNORECASE
)


def generalized_time_key(text):
    """A sortable UTC text ``YYYYmmddHHMMSS.ffffff`` of an LDAP generalized time
    (AD ``whenCreated``, OpenLDAP ``createTimestamp``), ``None`` when unreadable."""
    match = _GENERALIZED.match(str(text or "").strip())
    if not match:
        return None
    stamp, fraction, zone = match.groups()
    try:
        moment = dt.datetime.strptime(stamp, "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        moment -= sign * offset
    return f"{moment:%Y%m%d%H%M%S}.{(fraction or '').ljust(6, '0')}"


class ExtensionClaim(NamedTuple):
    """A directory entry asking for an extension through its attribute.

    Two people whose entries ask for the same number are settled once per run,
    before any page is planned, so that neither the read order nor the paging
    decides who gets it (see :meth:`_Planner.register_claims`): the person who
    already holds the number (in Odoo or on the PBX) keeps it; otherwise the
    entry created first in the directory (AD ``whenCreated``, OpenLDAP
    ``createTimestamp``), and between entries created the same second, or without
    a readable creation time, the lower GUID.
    """

    extension: str
    anchor: str
    created: str | None  # generalized_time_key
    rule: str  # the extension's sync rule for this entry
    dn: str = ""
    name: str | None = None
    login: str | None = None
    email: str | None = None

    @property
    def order(self):
        """The stable rule's sort key: earlier creation first, GUID on ties."""
        return (self.created is None, self.created or "", self.anchor)

    def person(self):
        return {
            "kind": "person",
            "anchor": self.anchor,
            "name": self.name,
            "login": self.login,
            "dn": self.dn,
        }


def _pages_of_entries(entries):
    """Entries one at a time from an iterable of entries or of pages of entries."""
    if isinstance(entries, Mapping):
        entries = [DirectoryEntry.from_dict(v, anchor=k) for k, v in entries.items()]
    for item in entries or ():
        if isinstance(item, (list, tuple)):
            yield from (DirectoryEntry.from_dict(e) for e in item)
        else:
            yield DirectoryEntry.from_dict(item)


def collect_claims(settings, entries, now=None):
    """The :class:`ExtensionClaim` of every enabled entry whose mapped extension
    attribute holds a number, from ``entries`` (an iterable of entries or of pages
    of them, e.g. :meth:`DirectoryReader.claim_pages`). Empty when the extension
    does not come from the directory."""
    if not settings.extension_from_directory:
        return []
    moment = _as_datetime(now)
    lines = settings.extension_lines()
    first_rule = settings.extension.rule or lines[0].rule or "create_only"
    by_target = {}
    for line in settings.field_mappings:
        if line.rule != "ignore" and line.target in (
            "user.login",
            "user.name",
            "user.email",
            "pbx.email",
        ):
            by_target.setdefault(line.target, []).append(line)
    region = settings.default_region
    claims = []
    for entry in _pages_of_entries(entries):
        if (
            entry.disabled
            or entry.disabled_reason
            or ad_account_disabled(entry.attributes, moment)
        ):
            continue
        extension = _first_value(entry, lines, region)
        if not extension or not re.fullmatch(r"\d{1,8}", extension):
            continue
        login = _first_value(entry, by_target.get("user.login", ()), region)
        if not login:
            continue  # never created, so never given a number
        email = _first_value(
            entry,
            [*by_target.get("user.email", ()), *by_target.get("pbx.email", ())],
            region,
        )
        created = entry.get("whencreated") or entry.get("createtimestamp")
        claims.append(
            ExtensionClaim(
                extension,
                entry.anchor,
                generalized_time_key(created),
                first_rule,
                entry.dn,
                _first_value(entry, by_target.get("user.name", ()), region),
                login,
                email.lower() if email else None,
            )
        )
    return claims


def _first_value(entry, lines, region):
    for line in lines:
        try:
            value = apply_transforms(entry.values(line.attribute), line, region)
        except _EntryError:
            continue
        if value is not None:
            return value
    return None


@dataclass
class _Contest:
    """What the run decided about one extension the directory asks for."""

    extension: str
    claims: list  # ExtensionClaim, stable order
    winner: str | None  # anchor keeping the number, None: someone else holds it
    why: str  # holder | pbx_user | odoo_user | created_first | guid_order | held_elsewhere
    holders: list = field(default_factory=list)  # owner details of who else holds it
    outcomes: dict = field(default_factory=dict)  # loser anchor -> extension planned


def _same_name(a, b):
    def fold(text):
        return " ".join(unicodedata.normalize("NFKC", text or "").casefold().split())

    return bool(fold(a)) and fold(a) == fold(b)


def conflict_message(details):
    """An English sentence for an extension conflict's ``Held.details`` (the Odoo
    addon words it in the reader's language from the same details)."""

    def who(item):
        if not item:
            return "nobody"
        kind = item.get("kind")
        if kind == "pbx_user":
            return f"PBX user {item.get('name') or ''} ({item.get('id')})".replace(
                "  ", " "
            )
        if kind == "odoo_user":
            return f"Odoo user {item.get('login') or item.get('id')}"
        if kind == "pbx_group":
            return f"PBX group {item.get('label')}"
        name = item.get("name") or item.get("anchor")
        return f"{name} ({item['login']})" if item.get("login") else str(name)

    extension = details.get("extension")
    person = who(details.get("person"))
    got = details.get("got")
    outcome = f"{person} has {got}" if got else f"{person} has no extension"
    if details.get("why") == "held_elsewhere":
        holders = ", ".join(who(h) for h in details.get("holders") or ()) or "another"
        return (
            f"Extension {extension} from the directory for {person} is already used "
            f"by {holders}: {outcome}."
        )
    kept = who(details.get("kept_by"))
    others = [who(o) for o in details.get("others") or ()]
    everyone = ", ".join([kept, person, *others])
    return (
        f"The directory gives extension {extension} to {everyone}: {kept} keeps it "
        f"({details.get('why')}); {outcome}."
    )


# --------------------------------------------------------------------------------------
# planner
# --------------------------------------------------------------------------------------


class _EntryError(ValueError):
    pass


# resolve_extension's problem for a number settled for someone else: reported by
# _Planner.report_contests, once per run, instead of by each page
_SETTLED = ("extension_conflict", None)


def apply_transforms(values, mapping, default_region="RU"):
    """Directory value list → one field value (``None`` when empty), per the mapping
    line."""
    values = [v for v in (_text(x) for x in _as_list(values)) if v.strip() != ""]
    if "joined" in mapping.transforms:
        value = mapping.separator.join(v.strip() for v in values) if values else None
    else:
        value = values[0] if values else None
    if value is None:
        return None
    for step in mapping.transforms:
        if step in ("first", "joined"):
            continue
        # An unchanged value stays the very string the entry holds: a plan for
        # 10,000 people then shares its text with the scan instead of copying it.
        if step == "trim":
            value = _same_or(value, " ".join(value.split()))
        elif step == "lower":
            value = _same_or(value, value.lower())
        elif step == "upper":
            value = _same_or(value, value.upper())
        elif step == "digits":
            value = re.sub(r"\D", "", value)
        elif step == "phone":
            normalized = _normalize_phone(value, default_region)
            if not normalized:
                raise _EntryError(
                    f"{mapping.attribute}: {value!r} is not a phone number"
                )
            value = normalized
        if value == "":
            return None
    return value


def _same_or(original, transformed):
    return original if transformed == original else transformed


@functools.lru_cache(maxsize=4096)
def _normalize_phone(value, region):
    # Numbers Mango and Odoo spell alike take a fast path (a few µs); the others
    # cost phonenumbers' parse, repeated within a run when a number is compared.
    # Bounded well below a directory's size: a cache holding every number of the
    # directory would make a sync's memory grow with it.
    if not isinstance(value, str):
        return None
    return phones.normalize(value, region)


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

        # extension -> owner key, or a set of them when several claim it (rare: one
        # string per person instead of a set keeps the registries small)
        self.ext_owners = {}
        self.login_owners = {}  # lower login -> owner key
        self.linked_pbx_ids = {}  # PBX user id -> anchor of the person linked to it
        self._ext_cursor = 0
        # extensions several people ask for, or that someone else holds: settled
        # once by register_claims, reported on every run by finish
        self.contests = {}
        # extension -> the anchor register_claims gave it to: free for them even
        # while an unlinked PBX user they are about to be linked to has it
        self.settled = {}
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
        self.sip_taken = _SipTaken()
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
        key = str(ext)
        current = self.ext_owners.get(key)
        if current is None:
            self.ext_owners[key] = owner
        elif isinstance(current, str):
            if current != owner:
                self.ext_owners[key] = {current, owner}
        else:
            current.add(owner)

    def _ext_owner_set(self, ext):
        current = self.ext_owners.get(str(ext))
        if current is None:
            return set()
        return {current} if isinstance(current, str) else current

    def _register(self, linked):
        for ext, label in self.reserved_extensions.items():
            self._own_ext(_clean(ext), f"reserved:{label}")
        for user in self.pbx_users.values():
            self._own_ext(user.extension, f"pbx:{user.user_id}")
            self.sip_taken.update(s.lower().split("@")[0] for s in user.sip_logins)
        for user in self.odoo_users:
            self._own_ext(_clean(user.extension), f"odoo:{user.user_id}")
            if user.login:
                self.login_owners.setdefault(user.login.lower(), f"odoo:{user.user_id}")
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
                self.login_owners[_lower(login)] = owner
            if rec.pbx_user_id:
                self.linked_pbx_ids[rec.pbx_user_id] = rec.anchor
            self.sip_taken.update(s.lower().split("@")[0] for s in rec.sip_logins)

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
        if kind == "pbx" and key in self.linked_pbx_ids:
            kind, key = "anchor", self.linked_pbx_ids[key]
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
        for ext in sorted(by_ext):
            group = sorted(by_ext[ext].values(), key=lambda c: c.order)
            self._settle(ext, group)

    def _settle(self, ext, group):
        anchors = {c.anchor: c for c in group}
        holders, outside = {}, []
        pbx_matching = self.s.pbx.enabled and self.s.pbx.match_existing
        for owner in self._ext_owner_set(ext):
            kind, _sep, key = owner.partition(":")
            if kind == "pbx" and key in self.linked_pbx_ids:
                kind, key = "anchor", self.linked_pbx_ids[key]
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
        self.settled[ext] = winner.anchor
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
        while number <= policy.range_end:
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
            if self.settled.get(attr_ext) == anchor or self._ext_free(attr_ext, owners):
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
        if attr_ext and (contest is None or contest.winner == anchor):
            for user in self.pbx_by_ext.get(attr_ext, ()):
                if user.user_id not in self.linked_pbx_ids:
                    return user, "extension"
        if email:
            # a PBX user whose number the directory gives someone else is theirs,
            # not this person's, whatever its e-mail says
            mine = f"anchor:{anchor}"
            found = [
                u
                for u in self.pbx_by_email.get(email.lower(), ())
                if u.user_id not in self.linked_pbx_ids
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
        sip_login = sip_login_for(login, extension, self.sip_taken)
        self.sip_taken.add(sip_login)
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
            self.linked_pbx_ids[matched.user_id] = anchor
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
        owner = self.login_owners.get(login.lower())
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
        self.login_owners[_lower(login)] = owner
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
        owner = self.login_owners.get(value.lower())
        if owner not in (None, f"anchor:{anchor}"):
            self.hold(
                anchor,
                "update",
                "login_conflict",
                f"New login {value!r} is already used",
            )
            return False
        if current:
            self.login_owners.pop(str(current).lower(), None)
        self.login_owners[_lower(value)] = f"anchor:{anchor}"
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
        self.seen = set()

    def plan_page(self, entries, linked):
        """Plan the entries of one page into ``self.plan``; ``linked`` maps anchors to
        records (at least those of these entries)."""
        ordered = sorted(a for a in entries if a in linked) + sorted(
            a for a in entries if a not in linked
        )
        for anchor in ordered:
            if anchor in self.seen:
                # overlapping search bases return a person twice
                continue
            self.seen.add(anchor)
            entry = entries[anchor]
            rec = linked.get(anchor)
            values, sources = self.desired_values(entry)
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
                if rec.active and rec.anchor not in self.seen
            )
        departures.sort(key=lambda item: item[0].anchor)
        self.departures(departures, active_linked, len(self.seen))
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
    anchors seen so far, and the linked accounts the directory disabled. Departures
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
        )
        self._planner.begin(linked)
        # the extensions the whole scope asks for, settled before the first page
        self._planner.register_claims(claims)

    @property
    def seen(self):
        """Anchors planned so far (a frozen view would copy 10,000 strings a page)."""
        return self._planner.seen

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


def settings_fingerprint(*parts):
    """Stable short hash of configuration values (used for scope fingerprints)."""
    digest = hashlib.sha256(
        json.dumps(_plain(list(parts)), sort_keys=True, default=str).encode()
    ).hexdigest()
    return digest[:32]


_READER_NAMES = {
    "DirectoryReader",
    "PagedScan",
    "DirectoryConfig",
    "DirectoryServer",
    "SearchBase",
    "ConnectionReport",
    "DirectoryError",
    "DirectoryConnectionError",
    "DirectoryCertificateError",
    "DirectoryBindError",
    "DirectorySearchError",
    "DirectoryIncompleteError",
}


def __getattr__(name):
    # The reader imports this module for its value types; importing it lazily keeps the
    # planner usable (and importable) without touching ldap3.
    if name in _READER_NAMES:
        from . import ldap_reader

        return getattr(ldap_reader, name)
    raise AttributeError(name)


# The reader's names (DirectoryReader, DirectoryConfig, …) resolve lazily, see above.
__all__ = [
    "PRESETS",
    "DeletionPolicy",
    "DirectoryEntry",
    "DirectoryPreset",
    "ExtensionClaim",
    "ExtensionPolicy",
    "FieldChange",
    "FieldMapping",
    "Held",
    "LinkedRecord",
    "OdooUser",
    "PagedPlanner",
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
