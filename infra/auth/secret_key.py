"""The key that signs API tokens when the environment gives none (demo and DEBUG mode).

A constant in the public source would let anyone mint tokens for any installation. Instead
each installation generates a random key once, keeps it in a file only its owner can read
(``var/secret_key`` by default), and every process of the installation reuses it.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

# The secret key placeholder of .env.example: never a real deployment's key.
PLACEHOLDER = "change-me-to-a-long-random-string"


def installation_key(path: Path) -> str:
    """The key stored at ``path``, created (mode 0600) with a new random key if absent.

    Two processes starting at once both try an exclusive create: one writes the key, the
    other reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def _read(path: Path) -> str:
    # The writer may be between its create and its write: give it a moment.
    for _ in range(100):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it to generate a new secret key.")
