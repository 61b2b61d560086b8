"""Placeholders of canned replies (macros): ``{{customer.name}}`` and the like.

Pure text functions shared by the write side (a macro may only use known placeholders) and
the read side (which fills them in for one ticket).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = (
    "customer.name",
    "customer.email",
    "ticket.subject",
    "ticket.status",
    "agent.name",
)
PATTERN = re.compile(r"\{\{\s*([A-Za-z_.]+)\s*\}\}")


def unknown_placeholders(text: str) -> list[str]:
    """The placeholders in ``text`` that are not in ``PLACEHOLDERS``, in order of first use."""
    found: list[str] = []
    for name in PATTERN.findall(text):
        if name not in PLACEHOLDERS and name not in found:
            found.append(name)
    return found


def fill_placeholders(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each known placeholder replaced by its value (empty when unknown)."""
    return PATTERN.sub(
        lambda m: values.get(m.group(1), "") if m.group(1) in PLACEHOLDERS else m.group(0),
        text,
    )
