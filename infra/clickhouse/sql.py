"""SQL literals for the parameters of analytics queries.

ClickHouse 18.16 has no server-side parameters (``{p:Type}``), so both adapters get the same
SQL text with the values quoted here: strings escaped (backslash and quote), numbers checked
to be numbers, datetimes as ``toDateTime('...', 'UTC')``. Only these types are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, UUID):
        return f"toUUID('{value}')"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("datetimes need a time zone")
        text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"toDateTime('{text}', 'UTC')"
    if isinstance(value, date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return "[" + ", ".join(literal(v) for v in items) + "]"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def render(template: str, params: Mapping[str, Any]) -> str:
    """``template`` with each ``%(name)s`` replaced by the literal of ``params[name]``."""
    return template % {name: literal(value) for name, value in params.items()}


def identifier(name: str) -> str:
    """A table or database name: letters, digits and underscores only."""
    if not name or not all(c.isalnum() or c == "_" for c in name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def in_list(values: Sequence[Any]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"
