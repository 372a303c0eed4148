{
    "name": "Mango Office Directory Sync (LDAP / Active Directory)",
    "summary": "Continuous import of Active Directory / OpenLDAP staff into users, "
    "employees and Mango Office PBX extensions and SIP accounts",
    "version": "1.0.0",
    "development_status": "Alpha",
    "category": "Productivity/VoIP",
    "website": "https://github.com/mango-odoo/mango-odoo",
    "author": "Mango Odoo Telephony contributors",
    "license": "LGPL-3",
    "depends": ["mango_telephony", "hr", "auth_ldap"],
    "external_dependencies": {"python": ["ldap3"]},
    "uninstall_hook": "uninstall_hook",
    "data": [
        "security/mango_ldap_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron_data.xml",
        "views/mango_ldap_directory_views.xml",
        "views/mango_ldap_sync_run_views.xml",
        "views/mango_ldap_link_views.xml",
        "wizards/mango_ldap_sip_reveal_views.xml",
        "views/mango_ldap_menus.xml",
    ],
    "assets": {
        "web.assets_backend": [
            "mango_ldap/static/src/**/*",
        ],
        "web.assets_tests": [
            "mango_ldap/static/tests/tours/**/*",
        ],
    },
    "installable": True,
}
