from . import mango_callback_widget
from . import mango_callback_request
from . import mango_call
from . import website
from . import website_page
