"""Every ``DESKSTREAM_*`` variable the code reads is documented in a table row of
``docs/operations.md`` (name, default, meaning), and the docs name no variable the code does
not read (``DESKSTREAM_CONN_MAX_AGE`` was documented long after the code stopped reading it).
ADRs are left out of the second check: they record what was decided then."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("domain", "command_api", "projections", "read_api", "infra", "config", "scripts")
# What an operator sets besides the Python code: the compose stack, its .env and the image.
FILES = ("docker-compose.yml", ".env.example", "Dockerfile", "Makefile")
NAME = re.compile(r"\bDESKSTREAM_[A-Z0-9_]*[A-Z0-9]\b")


def variables_in_the_code(packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Each variable with the first file that names it."""
    found: dict[str, str] = {}
    paths = [p for package in packages for p in sorted((ROOT / package).rglob("*.py"))]
    paths += [ROOT / name for name in FILES if (ROOT / name).exists()]
    for path in paths:
        for name in NAME.findall(path.read_text()):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def documented_in_operations() -> set[str]:
    """The variables named in the first cell of a table row of docs/operations.md."""
    names: set[str] = set()
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        if line.startswith("|"):
            names |= set(NAME.findall(line.split("|")[1]))
    return names


def test_the_code_finds_the_variables_it_reads() -> None:
    found = variables_in_the_code()
    # A few the code is known to read, from different places: the scan is not empty-handed.
    assert found["DESKSTREAM_SECRET_KEY"] == "config/settings.py"
    assert found["DESKSTREAM_TEST_WITHOUT_REDIS"] == "scripts/with_services.py"
    assert "DESKSTREAM_KAFKA_BOOTSTRAP" in found
    assert "DESKSTREAM_PARENT_PID" in found


def test_every_variable_the_code_reads_is_documented_in_operations() -> None:
    missing = {
        name: where
        for name, where in variables_in_the_code().items()
        if name not in documented_in_operations()
    }
    assert missing == {}, "add a row to the tables of docs/operations.md for these"


def test_the_docs_name_no_variable_the_code_does_not_read() -> None:
    read = set(variables_in_the_code((*PACKAGES, "tests", "bench")))
    docs = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    stale = {
        (str(path.relative_to(ROOT)), name)
        for path in docs
        for name in NAME.findall(path.read_text())
        if name not in read
    }
    assert stale == set()
