"""The database objects an addon makes in SQL rather than through the ORM.

Uninstalling a module removes the tables and columns of its models and
nothing else: a table, function or trigger created by hand stays behind
unless the module's uninstall hook drops it. The uninstall tests compare
what exists before and after the hook.
"""


def mango_sql_objects_outside_orm(env):
    """Tables, functions and triggers named ``mango_…`` that no model owns.

    :return: a set of (kind, name) pairs
    """
    orm_tables = set()
    for model in env.registry.values():
        if model._auto and not model._abstract:
            orm_tables.add(model._table)
        for field in model._fields.values():
            if field.type == "many2many" and field.store and field.relation:
                orm_tables.add(field.relation)
    cr = env.cr
    cr.execute(
        r"""
        SELECT 'table', c.relname
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema()
           AND c.relkind IN ('r', 'p')
           AND c.relname LIKE 'mango\_%'
        UNION ALL
        SELECT 'function', p.proname
          FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = current_schema() AND p.proname LIKE 'mango\_%'
        UNION ALL
        SELECT 'trigger', t.tgname
          FROM pg_trigger t
         WHERE NOT t.tgisinternal AND t.tgname LIKE 'mango\_%'
        """
    )
    return {
        (kind, name)
        for kind, name in cr.fetchall()
        if not (kind == "table" and name in orm_tables)
    }
