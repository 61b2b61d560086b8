"""Liveness and readiness, and the scrape-time gauges of shared state.

``readiness`` is what ``GET /readyz`` answers: the database answers, and every projector is
at most ``max_lag`` events behind the head of the log; otherwise it names what is not. A
projector whose position cannot be read (its search or analytics server is down) is
reported as ``unavailable`` and makes the process not ready as well: its readers would get
stale or no answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from infra.observability.metrics import gauge


@dataclass
class Readiness:
    database: bool
    head: int | None
    projectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    lagging: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.database and not self.lagging and not self.unavailable

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "ready" if self.ready else "not ready",
            "database": "ok" if self.database else "unreachable",
            "head": self.head,
            "projectors": self.projectors,
            "lagging": self.lagging,
            "unavailable": self.unavailable,
        }


def readiness(
    database: Callable[[], None],
    head: Callable[[], int],
    positions: Mapping[str, Callable[[], int]],
    max_lag: int,
) -> Readiness:
    try:
        database()
        top = head()
    except Exception:
        return Readiness(database=False, head=None)
    out = Readiness(database=True, head=top)
    for name, position in positions.items():
        try:
            at = position()
        except Exception as error:
            out.projectors[name] = {"position": None, "lag": None, "error": type(error).__name__}
            out.unavailable.append(name)
            continue
        lag = max(top - at, 0)
        out.projectors[name] = {"position": at, "lag": lag}
        if lag > max_lag:
            out.lagging.append(name)
    return out


def projector_gauges(
    head: Callable[[], int], positions: Mapping[str, Callable[[], int]]
) -> Iterable[GaugeMetricFamily]:
    """``deskstream_log_head_position``, and each projector's position and lag."""
    top = head()
    head_gauge = gauge("deskstream_log_head_position", "Position of the newest event in the log.")
    head_gauge.add_metric([], top)
    position = gauge(
        "deskstream_projector_position", "Log position a projector has applied.", ["projector"]
    )
    lag = gauge(
        "deskstream_projector_lag_events",
        "Events in the log a projector has not applied yet (head - position).",
        ["projector"],
    )
    for name, read in positions.items():
        try:
            at = read()
        except Exception:  # noqa: S112 - its server is down: no sample, the lag alert fires
            continue
        position.add_metric([name], at)
        lag.add_metric([name], max(top - at, 0))
    return [head_gauge, position, lag]


def counts_gauge(
    name: str, documentation: str, label: str, counts: Mapping[str, int]
) -> GaugeMetricFamily:
    family = gauge(name, documentation, [label])
    for key, value in sorted(counts.items()):
        family.add_metric([key], value)
    return family
