"""Many rows in one statement: ``INSERT ... SELECT ... FROM json_to_recordset(<the rows>)``
(and ``select_sql``, the adapters' cached ``SELECT`` of rows by a condition).

A projector's batch writes hundreds of rows per table. ``executemany`` sends them as one
statement per row, and PostgreSQL pays for each (parse, plan, open the table and each of
its indexes, run the executor) on top of the row's own work: in a 340k-event rebuild
(``bench/projections.py``) that per-statement cost was most of PostgreSQL's CPU. Here the
rows travel as one JSON document (``orjson``, C; psycopg's own array adapters cost
~5 µs per value in Python) bound server-side, so the statement text never changes.
``json_to_recordset`` turns JSON arrays into PostgreSQL arrays (tags) and ISO strings into
timestamps. The column types come from the table itself, read once per table and process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.types.datetime import TimestamptzLoader
from psycopg.types.json import Json, Jsonb

# table -> {column: SQL type}. Shadow tables copy the live ones (``LIKE ... INCLUDING ALL``).
_TYPES: dict[str, dict[str, str]] = {}

Rows = Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]]

# Statement text per call shape. Composing it with ``psycopg.sql`` costs ~0.3 ms, which the
# in-process projectors paid on every small batch. The key holds the identity of the caller's
# SQL fragments (``on_conflict``, ``computed``, ``where``); the entry keeps those objects, so
# a fragment built anew per call (a new identity) only misses the cache, never hits a stale one.
_STATEMENTS: dict[tuple[Any, ...], tuple[tuple[Any, ...], str]] = {}


def _statement(key: tuple[Any, ...], fragments: tuple[Any, ...], build: Callable[[], str]) -> str:
    full_key = (*key, *map(id, fragments))
    hit = _STATEMENTS.get(full_key)
    if hit is not None and all(a is b for a, b in zip(hit[0], fragments, strict=True)):
        return hit[1]
    text = build()
    if len(_STATEMENTS) > 512:
        _STATEMENTS.clear()
    _STATEMENTS[full_key] = (fragments, text)
    return text


def _raw(cursor: Any) -> psycopg.Cursor[Any]:
    """A server-side-binding psycopg cursor on the connection (and so the transaction) of
    ``cursor``: Django's cursors bind client-side, quoting the whole document into the SQL."""
    inner = getattr(cursor, "cursor", cursor)
    return psycopg.Cursor(inner.connection)


def select_rows(cursor: Any, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` on the connection (and so in the transaction) of ``cursor``,
    timestamps read by psycopg's own loader, in C: a Django cursor reads each through
    Django's loader, a Python subclass of psycopg's pure-Python one (~8% of the projector
    process under load went there, ADR 0022). Same values: Django's sessions are in UTC,
    and so are the datetimes either loader gives; everything else loads as on ``cursor``."""
    cur = _raw(cursor)
    cur.adapters.register_loader("timestamptz", TimestamptzLoader)
    cur.execute(query, params)
    return cur.fetchall()


def _types(cur: psycopg.Cursor[Any], table: str, columns: Sequence[str]) -> dict[str, str]:
    known = _TYPES.get(table)
    if known is None or any(c not in known for c in columns):
        cur.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [sql.Identifier(table).as_string(None)],
        )
        known = _TYPES[table] = {str(name): str(type_name) for name, type_name in cur.fetchall()}
        missing = [c for c in columns if c not in known]
        if missing:
            raise LookupError(f"{table} has no column(s) {', '.join(missing)}")
    return known


def _plain(value: Any) -> Any:
    """JSON for what ``orjson`` cannot encode itself."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Json | Jsonb):
        return value.obj
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} in a bulk statement")


def _document(columns: Sequence[str], rows: Rows) -> str:
    if isinstance(rows[0], Mapping):
        records = [{c: row[c] for c in columns} for row in rows]  # type: ignore[call-overload]
    else:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
    # orjson writes datetimes (ISO 8601, as ``isoformat``), dates and UUIDs itself, in C:
    # ``json.dumps`` called ``_plain`` for each of them, ~10% of the projector process
    # under load (ADR 0022). The text is the same JSON.
    return orjson.dumps(records, default=_plain).decode()


def _recordset(types: dict[str, str], columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("json_to_recordset(%s::json) AS u({})").format(
        sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types[c])) for c in columns
        )
    )


def update_on_conflict(key: str, columns: Iterable[str]) -> sql.Composed:
    """``ON CONFLICT (key) DO UPDATE SET c = EXCLUDED.c`` for every column but the key
    (one object per key and columns, so statements using it are composed once)."""
    return _update_on_conflict(key, tuple(columns))


@functools.cache
def _update_on_conflict(key: str, columns: tuple[str, ...]) -> sql.Composed:
    return sql.SQL("ON CONFLICT ({key}) DO UPDATE SET {upd}").format(
        key=sql.Identifier(key),
        upd=sql.SQL(", ").join(
            sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in columns if c != key
        ),
    )


IGNORE_CONFLICTS = sql.SQL("ON CONFLICT DO NOTHING")


def select_sql(table: str, columns: Sequence[str], where: str) -> str:
    """``SELECT <columns> FROM <table> WHERE <where>``, ``where`` being SQL text with its
    placeholders. The projectors' adapters read rows back on every batch; composing the
    head with ``psycopg.sql`` each time cost ~5% of the projector process (ADR 0020), so it
    is composed once per table and columns."""
    return _select_head(table, tuple(columns)) + where


@functools.lru_cache(maxsize=128)
def _select_head(table: str, columns: tuple[str, ...]) -> str:
    return (
        sql.SQL("SELECT {cols} FROM {t} WHERE ")
        .format(cols=sql.SQL(", ").join(map(sql.Identifier, columns)), t=sql.Identifier(table))
        .as_string(None)
    )


def insert_rows(
    cursor: Any,
    table: str,
    columns: Sequence[str],
    rows: Rows,
    *,
    on_conflict: sql.Composable | None = None,
    computed: Mapping[str, sql.Composable] | None = None,
) -> None:
    """Insert ``rows`` (sequences in ``columns`` order, or mappings with those keys) into
    ``table`` with one statement. ``computed`` adds columns whose values are SQL expressions
    over the inserted values, which they name ``u.<column>``. ``on_conflict`` is the
    statement's ``ON CONFLICT ...`` clause (with ``DO UPDATE``, keys must be unique)."""
    if not rows:
        return
    cur = _raw(cursor)
    types = _types(cur, table, columns)

    def build() -> str:
        extra = dict(computed or {})
        template = "INSERT INTO {t} ({names}) SELECT {values} FROM {rows} {conflict}"
        return (
            sql.SQL(template)
            .format(
                t=sql.Identifier(table),
                names=sql.SQL(", ").join(map(sql.Identifier, [*columns, *extra])),
                values=sql.SQL(", ").join(
                    [*(sql.SQL("u.{}").format(sql.Identifier(c)) for c in columns), *extra.values()]
                ),
                rows=_recordset(types, columns),
                conflict=on_conflict or sql.SQL(""),
            )
            .as_string(None)
        )

    text = _statement(("insert", table, tuple(columns)), (on_conflict, computed), build)
    cur.execute(text, [_document(columns, rows)])


def update_rows(
    cursor: Any,
    table: str,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    where: sql.Composable | None = None,
) -> None:
    """``UPDATE table AS d SET <columns> = the row's values WHERE d.<key> = the row's key``
    for all ``rows`` (mappings with ``key`` and ``columns``; keys unique) in one statement,
    narrowed by ``where`` (over ``d``) when given."""
    if not rows:
        return
    cur = _raw(cursor)
    names = [key, *columns]
    types = _types(cur, table, names)

    def build() -> str:
        # The rows come through a subquery with a LIMIT: ``json_to_recordset`` alone is
        # estimated at 100 rows, and against a table of up to some 30,000 rows the planner
        # then hashes them and scans the whole table, once per batch (~1 ms at 14,000
        # documents, growing with the table). With the LIMIT (the row count, a parameter:
        # a generic plan estimates it low) it looks each row up by its key.
        template = sql.SQL(
            "UPDATE {t} AS d SET {sets} FROM (SELECT * FROM {rows} LIMIT %s) AS u"
            " WHERE d.{key} = u.{key}{where}"
        )
        return template.format(
            t=sql.Identifier(table),
            sets=sql.SQL(", ").join(
                sql.SQL("{0} = u.{0}").format(sql.Identifier(c)) for c in columns
            ),
            rows=_recordset(types, names),
            key=sql.Identifier(key),
            where=sql.SQL(" AND ") + where if where is not None else sql.SQL(""),
        ).as_string(None)

    text = _statement(("update", table, tuple(names)), (where,), build)
    cur.execute(text, [_document(names, rows), len(rows)])
