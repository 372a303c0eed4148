"""The directory sync engine: the Odoo side of :mod:`mango_office.directory`.

Reading and planning are pure and live in the core (``DirectoryReader``,
``PagedPlanner``); this package turns a directory record into the core's
settings (``config``), what Odoo and the PBX hold into the core's values
(``existing``), and applies each page's ``Plan`` to Odoo (``apply_odoo``) and
the PBX (``apply_pbx``) or writes it as a preview (``preview``), in a run that
owns locking, commits, progress and memory (``run``), reporting through the
run's lines (``journal``).

Models call in through :class:`DirectorySync` (a run) and :func:`reader_config`
/ :func:`directory_reader` (a connection configured as the sync's).
"""

from .config import directory_reader, reader_config
from .run import DirectorySync

__all__ = ["DirectorySync", "directory_reader", "reader_config"]
