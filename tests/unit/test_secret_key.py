"""The key that signs tokens: never a constant of the public source.

Each case loads ``config.settings`` in a fresh interpreter, with the environment it names,
so the module-level checks run as they do when a server starts.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PLACEHOLDER = "change-me-to-a-long-random-string"  # .env.example's value


def load_settings(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``config.settings`` loaded with only ``env`` (plus PATH): prints its SECRET_KEY."""
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.SECRET_KEY)"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_mode_without_a_key_generates_one_per_installation(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret_key"
    env = {"DESKSTREAM_DEMO": "1", "DESKSTREAM_SECRET_KEY_FILE": str(key_file)}
    first = load_settings(env)
    assert first.returncode == 0, first.stderr
    key = first.stdout.strip()
    assert len(key) >= 50
    assert "insecure" not in key
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Reused: every process of the installation signs and verifies with the same key.
    again = load_settings({**env, "DESKSTREAM_DEMO": "0", "DESKSTREAM_DEBUG": "1"})
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == key
    # Another installation gets another key.
    other = load_settings({**env, "DESKSTREAM_SECRET_KEY_FILE": str(tmp_path / "other")})
    assert other.stdout.strip() not in ("", key)


def test_a_key_from_the_environment_wins_and_writes_no_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    given = "k" * 60
    result = load_settings(
        {"DESKSTREAM_SECRET_KEY": given, "DESKSTREAM_SECRET_KEY_FILE": str(key_file)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == given
    assert not key_file.exists()


def test_outside_demo_mode_the_placeholder_is_refused(tmp_path: Path) -> None:
    for extra in ({}, {"DESKSTREAM_DEBUG": "1"}):
        result = load_settings({"DESKSTREAM_SECRET_KEY": PLACEHOLDER, **extra})
        assert result.returncode != 0
        assert "DESKSTREAM_SECRET_KEY is the placeholder of .env.example" in result.stderr


def test_demo_mode_accepts_the_placeholder(tmp_path: Path) -> None:
    result = load_settings({"DESKSTREAM_SECRET_KEY": PLACEHOLDER, "DESKSTREAM_DEMO": "1"})
    assert result.returncode == 0, result.stderr


def test_outside_demo_and_debug_mode_a_key_is_required(tmp_path: Path) -> None:
    result = load_settings({"DESKSTREAM_SECRET_KEY_FILE": str(tmp_path / "secret_key")})
    assert result.returncode != 0
    assert "Set DESKSTREAM_SECRET_KEY" in result.stderr
    assert not (tmp_path / "secret_key").exists()
