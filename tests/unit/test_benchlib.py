"""bench/benchlib.py: the one percentile definition, the results renderer, and the committed
docs/benchmarks.md sections against the committed results they are rendered from."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from bench.benchlib import (
    DOC,
    RESULTS_DIR,
    column,
    dumps,
    load_results,
    percentile,
    render_section,
    results,
    section_of,
    table,
    write_section,
)


# ------------------------------------------------------------------------------ percentile
def test_percentile_interpolates_between_the_nearest_ranks() -> None:
    # Inclusive method: rank (n - 1) * p / 100, linear between the two samples around it.
    assert percentile([1, 2, 3, 4], 25) == pytest.approx(1.75)
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 75) == pytest.approx(3.25)
    assert percentile(range(1, 11), 90) == pytest.approx(9.1)
    assert percentile(range(1, 102), 99) == pytest.approx(100.0)
    assert percentile([10.0, 20.0], 99) == pytest.approx(19.9)


def test_percentile_ignores_input_order_and_p50_is_the_median() -> None:
    data = [9.0, 1.0, 7.5, 3.0, 3.0, 12.0, 0.5]
    assert percentile(data, 50) == statistics.median(data) == 3.0
    assert percentile(data[:6], 50) == statistics.median(data[:6]) == pytest.approx(5.25)
    assert percentile(data, 95) == percentile(sorted(data), 95) == pytest.approx(11.1)


def test_percentile_edges() -> None:
    assert math.isnan(percentile([], 99))
    assert percentile([4.2], 99) == 4.2
    assert percentile([3, 1, 2], 0) == 1
    assert percentile([3, 1, 2], 100) == 3
    with pytest.raises(ValueError, match="integer from 0 to 100"):
        percentile([1, 2, 3], 99.9)
    with pytest.raises(ValueError, match="integer from 0 to 100"):
        percentile([1, 2, 3], 101)


# ------------------------------------------------------------------------------ renderer
SMALL = results(
    "demo",
    ".venv/bin/python bench/demo.py --duration 5",
    {"date": "2026-12-06 10:00 UTC", "commit": "abc1234", "cpu": "Test CPU", "cores": "2"},
    {"PostgreSQL": "18.6 (embedded)", "Load": "a | b"},
    [
        table(
            "Throughput",
            [
                column("Server"),
                column("Clients", "d"),
                column("Commands/s", ",.0f"),
                column("p99 ms", ",.1f"),
                column("vs before", "{:.2f}x"),
                column("Met?"),
            ],
            [
                ["default", 32, 1494.4, 42.44, 2.101, True],
                ["lane off", 32, 711.0, None, 0.5, False],
            ],
        ),
        table("Empty tables are left out", [column("x")], []),
    ],
)

SMALL_MARKDOWN = """<!-- bench:demo:start -->
| Run |  |
|---|---|
| Command | `.venv/bin/python bench/demo.py --duration 5` |
| Date | 2026-12-06 10:00 UTC |
| Commit | abc1234 |
| CPU | Test CPU |
| Cores | 2 |
| PostgreSQL | 18.6 (embedded) |
| Load | a \\| b |

**Throughput**

| Server | Clients | Commands/s | p99 ms | vs before | Met? |
|---|---:|---:|---:|---:|---|
| default | 32 | 1,494 | 42.4 | 2.10x | yes |
| lane off | 32 | 711 |  | 0.50x | no |
<!-- bench:demo:end -->"""


def test_render_a_small_results_file() -> None:
    # Through JSON, as the committed files are read back.
    doc = json.loads(dumps(SMALL))
    assert render_section(doc) == SMALL_MARKDOWN


def test_a_row_with_the_wrong_number_of_cells_is_refused() -> None:
    doc = results("demo", "x", {}, {}, [table("T", [column("a"), column("b")], [[1]])])
    with pytest.raises(ValueError, match="has 1 cells for 2"):
        render_section(doc)


def test_write_section_replaces_only_its_own_section(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        "# Benchmarks\n\nHand-written intro.\n\n<!-- bench:demo:start -->\nold\n"
        "<!-- bench:demo:end -->\n\nHand-written notes.\n\n"
        "<!-- bench:other:start -->\nother\n<!-- bench:other:end -->\n"
    )
    write_section(SMALL_MARKDOWN, "demo", doc)
    text = doc.read_text()
    assert text == (
        "# Benchmarks\n\nHand-written intro.\n\n" + SMALL_MARKDOWN + "\n\nHand-written notes.\n\n"
        "<!-- bench:other:start -->\nother\n<!-- bench:other:end -->\n"
    )
    assert section_of(text, "demo") == SMALL_MARKDOWN
    assert section_of(text, "missing") is None


# ------------------------------------------------------------------------------ staleness
COMMITTED = sorted(p.stem for p in RESULTS_DIR.glob("*.json"))


def test_every_benchmark_has_committed_results() -> None:
    assert COMMITTED == [
        "analytics", "assignment", "commands", "drafts", "kafka", "projections", "realtime",
        "search", "web",
    ]  # fmt: skip


@pytest.mark.parametrize("bench", COMMITTED)
def test_the_doc_section_is_what_the_committed_results_render_to(bench: str) -> None:
    # Rerun the bench, or `.venv/bin/python bench/benchlib.py`, to render it again.
    assert section_of(DOC.read_text(), bench) == render_section(load_results(bench))


def test_every_section_of_the_doc_has_a_results_file() -> None:
    text = DOC.read_text()
    sections = sorted(
        line.removeprefix("<!-- bench:").removesuffix(":start -->")
        for line in text.splitlines()
        if line.startswith("<!-- bench:") and line.endswith(":start -->")
    )
    assert sections == COMMITTED
