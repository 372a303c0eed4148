"""The plan: what a sync will do, item by item, before anything is done.

The Odoo addon previews a plan or applies it in batches; ``to_dict`` hides the
SIP passwords unless asked for them.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from .values import _plain


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
