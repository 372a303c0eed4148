from . import test_sync_openldap
from . import test_sync_samba
from . import test_translations
from . import test_sync_progress
from . import test_bulk_subscriptions
from . import test_click_everywhere
