"""The EICAR anti-virus test file (``infra.clamav.daemon`` builds the tests' signatures
from it)."""

from __future__ import annotations

from infra.clamav.daemon import EICAR

__all__ = ["EICAR"]
