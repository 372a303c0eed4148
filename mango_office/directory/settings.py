"""What an administrator configured for a sync: mapping lines, roles, policies.

Each value checks itself when built, so that a mistyped rule or target is
refused where it is written, not half-way through a sync.
"""

import hashlib
import json
from dataclasses import dataclass

from .identity import normalize_dn, normalize_guid
from .values import _plain

SYNC_RULES = ("always", "create_only", "when_empty", "ignore")
TRANSFORMS = ("first", "joined", "trim", "lower", "upper", "phone", "digits")


PBX_FIELDS = ("name", "email", "mobile", "department", "position")


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


def settings_fingerprint(*parts):
    """Stable short hash of configuration values (used for scope fingerprints)."""
    digest = hashlib.sha256(
        json.dumps(_plain(list(parts)), sort_keys=True, default=str).encode()
    ).hexdigest()
    return digest[:32]
