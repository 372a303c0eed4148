"""What a directory read produces: the people, where the next read starts, the result.

The reader (:mod:`.reader`) fills these; the planner (:mod:`.planner`) only ever
sees them, so every decision is tested without a server.
"""

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from .identity import normalize_dn, normalize_guid
from .values import _as_list, _text


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
