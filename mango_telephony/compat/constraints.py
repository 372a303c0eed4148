"""Table constraints declared once, created on both series.

Odoo 18.0 reads ``_sql_constraints = [(name, definition, message)]``; Odoo 19.0
ignores that attribute (with a warning, so the constraint is silently never
created) and wants one ``models.Constraint`` class attribute per constraint. Our
models keep the 18.0 list, which reads well beside the fields, and carry
``@table_constraints``: on 19.0 it turns each entry into the ``Constraint`` that
19.0 would have declared, named ``_<name>`` so that the database name
(``<table>_<name>``) is the same on both series and an upgraded database keeps
its constraints.
"""

from odoo import models

from . import ODOO_19


def table_constraints(model_class):
    """Class decorator: create the class's ``_sql_constraints`` on either series."""
    if not ODOO_19:
        return model_class
    declared = model_class.__dict__.get("_sql_constraints")
    if declared is None:
        return model_class
    del model_class._sql_constraints
    for name, definition, message in declared:
        attribute = f"_{name}"
        constraint = models.Constraint(definition, message)
        setattr(model_class, attribute, constraint)
        # setattr after class creation does not call __set_name__, which is how
        # 19.0 registers the object on the model definition.
        constraint.__set_name__(model_class, attribute)
    return model_class
