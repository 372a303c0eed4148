"""What Odoo and Mango hold now, as the planner compares it with the directory.

``LinkedRecord`` is a person the sync already created or linked, ``PbxUser`` an
employee on the PBX, ``OdooUser`` an Odoo user the sync does not own yet.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from .identity import normalize_guid
from .values import _clean


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
