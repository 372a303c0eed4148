from odoo import fields, models


class MangoBenchEvent(models.Model):
    _name = "mango.bench.event"
    _description = "Benchmark baseline: one stored row per request"

    path = fields.Char()
    payload = fields.Text()
