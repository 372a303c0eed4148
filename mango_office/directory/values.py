"""Plain values out of what LDAP servers and callers hand the directory modules.

Servers send attribute values as lists, bytes or text, callers pass times as
epochs or naive datetimes, and plans leave as JSON: these helpers, shared by the
modules of this package (and private to it), turn each into one plain form.
"""

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import fields, is_dataclass


def _as_datetime(now):
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    if isinstance(now, (int, float)):
        return dt.datetime.fromtimestamp(now, dt.timezone.utc)
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.timezone.utc)
    return now


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


def _text(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _clean(value):
    if value is None or value is False:
        return None
    text = str(value).strip()
    return text or None


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
