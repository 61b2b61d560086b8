"""The one reading of an integer from text (query strings, path segments, headers, ids).

``str.isdigit()`` also says yes to "²" or "١٢", which ``int()`` then refuses (a 500), and
``int()`` alone accepts "+5", " 5" and "5_000". Here only ASCII digits count, and at most
``MAX_DIGITS`` of them: every number the desk reads fits a PostgreSQL ``bigint``.
"""

from __future__ import annotations

BIGINT_MAX = 2**63 - 1
MAX_DIGITS = len(str(BIGINT_MAX))


def parse_natural(text: str | None) -> int | None:
    """``text`` as a non-negative integer written in ASCII digits (at most a ``bigint``);
    ``None`` for anything else (empty, signs, spaces, other scripts' digits, too large)."""
    if not text or len(text) > MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= BIGINT_MAX else None
