"""A contact's phone numbers on each series.

Odoo 18.0 gives contacts (``res.partner``) and leads (``crm.lead``) a ``phone``
and a ``mobile``; Odoo 19.0 dropped ``mobile`` and keeps one ``phone``. Caller
identification still stores both E.164 columns on both series (same schema, so
an upgraded database loses nothing); on 19.0 the mobile one stays empty.
"""

from . import ODOO_19

MOBILE = "mobile"


def has_mobile(model):
    """Whether records of ``model`` have a separate mobile number on this series."""
    return MOBILE in model._fields


def mobile_of(record):
    """The record's mobile number, or False where the series has none."""
    return record[MOBILE] if has_mobile(record) else False


def set_mobile(record, number):
    """Give ``record`` a mobile number: as its mobile on 18.0; on 19.0 as its
    phone when it has none (what Odoo's own upgrade does with the column)."""
    if has_mobile(record):
        record[MOBILE] = number
    elif not record.phone:
        record.phone = number


#: The field a contact's or lead's mobile number is typed in on this series.
MOBILE_INPUT = "phone" if ODOO_19 else MOBILE


def phone_values(model, phone=False, mobile=False):
    """Values giving a new record of ``model`` these numbers on this series; on
    19.0 the mobile number is kept only where there is no phone (as
    :func:`set_mobile` does)."""
    if has_mobile(model):
        return {"phone": phone, MOBILE: mobile}
    return {"phone": phone or mobile}
