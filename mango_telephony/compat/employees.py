"""An employee's work contact on each series.

hr keeps some employee fields and the employee's work contact (a partner) in
step, writing one when the other changes. Odoo 18.0 pairs the work e-mail and
the work mobile (partner ``mobile``); 19.0, whose partners have no mobile, pairs
the work e-mail and the work phone. The directory sync gives these to the
partner with the user, in one batched insert, rather than letting hr write them
back one employee at a time.
"""

from . import ODOO_19

#: ``(employee field, work contact field)`` pairs hr keeps equal.
WORK_CONTACT_FIELDS = (
    (("work_email", "email"), ("work_phone", "phone"))
    if ODOO_19
    else (("work_email", "email"), ("mobile_phone", "mobile"))
)
