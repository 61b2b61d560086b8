"""Architecture boundaries: the import-linter contracts hold, and a planted violation fails them."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = [
    "domain",
    "command_api",
    "projections",
    "read_api",
    "infra",
    "processes",
    "config",
    "cli",
]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def run_lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_contracts_hold_on_the_real_tree(tree_copy: Path) -> None:
    result = run_lint_imports(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        ("domain/planted.py", "import django\n", "The domain imports no framework"),
        ("domain/planted.py", "from command_api import views\n", "The domain imports no framework"),
        ("read_api/planted.py", "from domain.ticket import Ticket\n", "The read side never loads"),
        ("infra/auth/planted.py", "import infra.kafka\n", "Adapters are independent"),
        ("infra/email/planted.py", "import infra.postgres.models\n", "Adapters are independent"),
        ("projections/planted.py", "import celery\n", "Projector logic imports no framework"),
        ("infra/server/planted.py", "import infra.kafka\n", "Adapters are independent"),
        # Layers: nothing below the composition root imports it; process managers sit above
        # the APIs; the command line above everything.
        ("infra/server/planted.py", "from config import bootstrap\n", "Layers"),
        ("processes/planted.py", "from config import bootstrap\n", "Layers"),
        ("command_api/planted.py", "import processes.sla\n", "Layers"),
        ("read_api/planted.py", "import processes.notifications\n", "Layers"),
        ("config/planted.py", "import cli.management.commands.projector\n", "Layers"),
        (
            "infra/postgres/planted.py",
            "import infra.server.lifecycle\n",
            "Adapters are independent",
        ),
        # Circles: two sibling modules importing each other (even lazily) break it.
        ("processes/sla.py", "import processes.runtime\n", None),
        ("config/celery.py", "import config.bootstrap\n", "No import circles"),
    ],
)
def test_a_planted_violation_fails(
    tree_copy: Path, module: str, source: str, contract: str | None
) -> None:
    path = tree_copy / module
    if contract is None:  # one side of a circle: on its own it breaks nothing
        path.write_text(path.read_text() + source)
        result = run_lint_imports(tree_copy)
        assert result.returncode == 0, result.stdout
        (tree_copy / "processes/runtime.py").write_text(
            (tree_copy / "processes/runtime.py").read_text() + "import processes.sla\n"
        )
        contract = "No import circles"
    elif path.exists():
        path.write_text(path.read_text() + source)
    else:
        path.write_text(source)
    result = run_lint_imports(tree_copy)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout


STDLIB = set(sys.stdlib_module_names)


def test_domain_imports_only_stdlib_and_eventsourcing_domain() -> None:
    """import-linter cannot forbid sub-packages of an external package; this test does."""
    offenders = []
    for path in (ROOT / "domain").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in STDLIB or top == "domain" or name == "eventsourcing.domain":
                    continue
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_config_holds_only_the_wiring() -> None:
    """``config/`` is settings, URLs, ASGI/WSGI, the Celery app and one bootstrap; server
    plumbing lives in ``infra/server``, behaviour in the layer it belongs to."""
    modules = sorted(
        p.relative_to(ROOT / "config").as_posix() for p in (ROOT / "config").rglob("*.py")
    )
    assert modules == [
        "__init__.py",
        "asgi.py",
        "bootstrap.py",
        "celery.py",
        "settings.py",
        "urls.py",
        "wsgi.py",
    ]
