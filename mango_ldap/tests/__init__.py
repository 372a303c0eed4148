from . import test_sync_openldap
