"""Website pages kept for public visitors, on each series.

Odoo 19.0 keeps the rendered HTML of a website page for public visitors for up
to an hour (``website.page._get_response``); 18.0 renders every request. Any
page part that changes without the page changing (the callback widget: switched
on or off, its texts, office hours turning to evening) must either keep the
page out of that store or empty it when it changes. The names below are the two
levers; both do nothing on 18.0.
"""

from . import ODOO_19

#: Whether this series keeps rendered pages for public visitors.
PAGES_ARE_CACHED = ODOO_19


def forget_cached_pages(env):
    """Drop every page kept for public visitors (19.0), so the next visitor
    gets a fresh rendering."""
    if PAGES_ARE_CACHED:
        env.registry.clear_cache("templates")
