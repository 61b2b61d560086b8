"""The clamd adapter against a real ``clamd`` (started by scripts/with_services.py with a
local signature database that knows EICAR)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from infra.clamav.scanner import ClamdScanner, ScannerError, parse_reply
from tests.conftest import free_port
from tests.support.eicar import EICAR
from tests.support.files import clamd_address

__all__ = ["clamd_address"]


def test_clean_files_pass_and_eicar_is_found(clamd_address: tuple[str, int]) -> None:
    scanner = ClamdScanner(*clamd_address)
    assert scanner.ping()
    assert scanner.scan(b"just a text file\n").infected is False
    big = os.urandom(300 * 1024)  # several INSTREAM chunks
    assert scanner.scan(big).infected is False
    found = scanner.scan(EICAR)
    assert found.infected is True
    assert found.signature == "eicar.txt.UNOFFICIAL"


def test_an_unreachable_clamd_is_a_scanner_error() -> None:
    scanner = ClamdScanner("127.0.0.1", free_port(), timeout=2)
    assert scanner.ping() is False
    with pytest.raises(ScannerError):
        scanner.scan(b"x")


@pytest.mark.parametrize(
    ("reply", "infected", "signature"),
    [
        ("stream: OK", False, ""),
        ("stream: Win.Test.EICAR_HDB-1 FOUND", True, "Win.Test.EICAR_HDB-1"),
    ],
)
def test_replies(reply: str, infected: bool, signature: str) -> None:
    result = parse_reply(reply)
    assert (result.infected, result.signature) == (infected, signature)


def test_an_error_reply_is_a_scanner_error() -> None:
    with pytest.raises(ScannerError, match="size limit"):
        parse_reply("INSTREAM size limit exceeded. ERROR")


def test_make_run_starts_its_own_clamd_when_none_is_given(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without DESKSTREAM_CLAMD_ADDRESS, ``make run``'s launcher starts clamd (the machine's
    signatures, or the EICAR test signature where there are none) and points the product
    at it; with one given, it starts nothing."""
    from infra.clamav import daemon
    from infra.server.launcher import scanner_note, start_scanner

    if daemon.binaries() is None:
        pytest.skip("no clamd (make clamav)")
    monkeypatch.setenv("DESKSTREAM_CLAMD_ADDRESS", "127.0.0.1:3310")
    assert start_scanner(tmp_path) == "clamd at 127.0.0.1:3310"
    monkeypatch.delenv("DESKSTREAM_CLAMD_ADDRESS")
    monkeypatch.setattr(daemon, "SYSTEM_DATABASE", tmp_path / "no-signatures")
    started = start_scanner(tmp_path / "clamav")
    assert isinstance(started, subprocess.Popen)
    try:
        host, _, port = os.environ["DESKSTREAM_CLAMD_ADDRESS"].rpartition(":")
        assert ClamdScanner(host, int(port)).scan(EICAR).infected is True
        assert "EICAR test signature only" in scanner_note(started)
    finally:
        started.terminate()
        started.wait(10)
