from . import test_callback_request
from . import test_callback_http
