"""HSTS and the HTTPS redirect come from the environment (off by default: `make run` serves
plain HTTP on 127.0.0.1). ``config.settings`` is loaded in a fresh interpreter per case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SHOW = (
    "import json, config.settings as s; print(json.dumps([s.SECURE_HSTS_SECONDS, "
    "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER]))"
)


def transport_settings(env: dict[str, str]) -> list[object]:
    result = subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "DESKSTREAM_SECRET_KEY": "k" * 60, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded: list[object] = json.loads(result.stdout)
    return loaded


def test_off_by_default() -> None:
    assert transport_settings({}) == [0, False, False, None]


def test_set_from_the_environment() -> None:
    assert transport_settings(
        {
            "DESKSTREAM_HSTS_SECONDS": "31536000",
            "DESKSTREAM_HSTS_INCLUDE_SUBDOMAINS": "1",
            "DESKSTREAM_SSL_REDIRECT": "1",
            "DESKSTREAM_PROXY_SSL_HEADER": "1",
        }
    ) == [31536000, True, True, ["HTTP_X_FORWARDED_PROTO", "https"]]
