"""Many rows updated with one statement run many times: `executemany` of a plain
UPDATE ... WHERE id = %s (pipelined by psycopg 3). Django's bulk_update builds a CASE
expression per field and row, which costs more than the update itself at thousands."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models


def update_rows(objects: Sequence[models.Model], fields: Sequence[str]) -> None:
    if not objects:
        return
    model = type(objects[0])
    meta = model._meta
    columns: list[models.Field] = []
    for name in fields:
        column = meta.get_field(name)
        if not isinstance(column, models.Field) or not column.column:
            raise ValueError(f"{name} is not a column of {meta.label}")
        columns.append(column)
    pk_column = str(meta.pk.column) if meta.pk is not None else "id"
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(column.column))} = %s" for column in columns)
    # Identifiers only, from the model and quoted; every value is a parameter.
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(pk_column)} = %s"  # noqa: S608
    params = [
        [column.get_db_prep_save(getattr(obj, column.attname), connection) for column in columns]
        + [obj.pk]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
