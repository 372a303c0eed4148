"""Pages showing the callback widget are rendered for every visitor.

Odoo 19.0 serves public visitors a page rendered up to an hour earlier
(``website.page._get_response``). The widget says "we call you back in N
seconds" or "we are closed, we call you tomorrow" by the office hours of the
moment, and is switched on and off from the backend: a kept page would show
yesterday evening's text in the morning, or a widget switched off. So a page is
not kept while its website shows the widget, and the kept pages are dropped
when a widget changes (mango.callback.widget.write). 18.0 keeps no pages and
never calls these methods.
"""

from odoo import api, models


class WebsitePage(models.Model):
    _inherit = "website.page"

    @api.model
    def _allow_to_use_cache(self, request):
        return super()._allow_to_use_cache(request) and not (
            request.website and request.website._mango_callback_widget()
        )
