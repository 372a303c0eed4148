from . import test_callback_request
from . import test_callback_http
from . import test_translations
from . import test_identifier_fields
from . import test_callback_fuzz
from . import test_click_everywhere
from . import test_callback_outbox
