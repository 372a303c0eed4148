{
    "name": "Mango Office Website Callback",
    "summary": 'Website widget "We\'ll call you back in N seconds": office hours, '
    "anti-abuse limits, requests placed as Mango PBX calls",
    "version": "1.0.0",
    "development_status": "Alpha",
    "category": "Website/Website",
    "website": "https://github.com/mango-odoo/mango-odoo",
    "author": "Mango Odoo Telephony contributors",
    "license": "LGPL-3",
    "depends": ["mango_telephony", "website", "crm", "resource"],
    "external_dependencies": {"python": ["phonenumbers"]},
    "data": [
        "security/ir.model.access.csv",
        "security/mango_callback_security.xml",
        "data/ir_cron_data.xml",
        "views/mango_callback_widget_views.xml",
        "views/mango_callback_request_views.xml",
        "views/mango_callback_menus.xml",
        "views/mango_callback_templates.xml",
        "views/snippets.xml",
    ],
    "assets": {
        "web.assets_frontend": [
            "mango_callback/static/src/scss/mango_callback.scss",
            "mango_callback/static/src/js/mango_callback.esm.js",
        ],
        "web.assets_tests": [
            "mango_callback/static/tests/tours/*.js",
        ],
    },
    "installable": True,
}
