"""From a directory attribute's values to one field value, per a mapping line."""

import functools
import re

from .. import phones
from .values import _as_list, _text


class _EntryError(ValueError):
    pass


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
