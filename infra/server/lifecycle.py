"""What a server process does before it exits: the composition root registers it here (stop
the projector threads, close the event store), the launcher runs it after the server stops."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

_hooks: list[Callable[[], None]] = []


def on_shutdown(hook: Callable[[], None]) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


def shutdown() -> None:
    """Run the hooks, last registered first; one that fails does not stop the others."""
    while _hooks:
        hook = _hooks.pop()
        try:
            hook()
        except Exception:
            log.warning("shutdown hook %r failed", hook, exc_info=True)
