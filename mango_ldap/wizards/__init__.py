from . import mango_ldap_sip_reveal
