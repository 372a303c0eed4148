"""Pure-Python core of the Mango Office VPBX integration.

Nothing in this package imports ``odoo``: it is shared by the three Odoo addons,
the simulator and the benchmarks, and tested on every machine.
"""

__version__ = "1.2.0"
