"""Extension claims: who the directory says has which extension, settled once a run.

When a directory attribute gives people their extension, two entries asking
for the same number are settled before any page is planned, so that neither the
read order nor the paging decides who gets it.
"""

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from .entries import DirectoryEntry
from .identity import ad_account_disabled
from .transforms import _EntryError, apply_transforms
from .values import _as_datetime

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
