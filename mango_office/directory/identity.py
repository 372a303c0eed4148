"""How a person is recognised in a directory: the anchor, the DN, the account state.

Identities are keyed by an immutable anchor (AD ``objectGUID``, OpenLDAP
``entryUUID``), never by DN or login; DNs are compared in one normal form; AD
says in two attributes whether an account may still be used.
"""

import base64
import contextlib
import datetime as dt
import functools
import re
import uuid

from .values import _as_datetime, _first

# userAccountControl ACCOUNTDISABLE (MS-ADTS 2.2.16)
UAC_ACCOUNTDISABLE = 0x2
# accountExpires "never": 0 or the largest 64-bit value (MS-ADA1 accountExpires)
_NEVER_EXPIRES = {0, 0x7FFFFFFFFFFFFFFF}
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)


_CANONICAL = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.ASCII
)


def normalize_guid(value):
    """Canonical anchor: lower-case UUID text.

    AD sends ``objectGUID`` as 16 bytes in Microsoft's mixed-endian layout
    (``bytes_le``); OpenLDAP's ``entryUUID`` is already text. Braced text (ldap3's
    formatted output), raw bytes as 32 hex digits (ldbsearch/PowerShell dumps) and
    base64 (LDIF exports) are accepted too so the same person never gets two keys.
    """
    if value is None:
        raise ValueError("empty directory identifier")
    if isinstance(value, str) and _CANONICAL.fullmatch(value):
        # already canonical (every anchor read back from Odoo): no UUID parse
        return value
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
