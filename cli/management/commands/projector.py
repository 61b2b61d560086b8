"""``manage.py projector run NAME | status | rebuild NAME``: operate the projectors.

``run`` follows the log in this process (one process per projector in production);
``status`` shows each projector's position and lag (for search on OpenSearch also the alias
and the index behind it); ``run`` pauses while the search backend is unreachable and resumes
from its stored position; ``rebuild`` rebuilds from zero beside
the live tables with a progress bar, then swaps the new copy in. ``--source kafka`` (run,
rebuild) is distributed mode: ``run`` consumes the relay's topic as one member of the
projector's consumer group; ``rebuild`` rebuilds from the log, recording the per-aggregate
versions that mode drops duplicates by (stop the projector's consumers first).

A projection is fed from one source at a time: ``run`` and ``rebuild`` refuse to start while
a feeder of the other source runs, and ``run`` refuses tables built from the other source
(``infra/postgres/feed.py``); ``run-all`` leaves out what Kafka feeds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from config import bootstrap
from infra.clickhouse.embedded import DirectoryInUseError
from infra.clickhouse.ports import AnalyticsUnavailableError
from infra.kafka.resilience import keep_running, reset_database
from infra.observability import metrics
from infra.postgres.feed import (
    KAFKA,
    LOG,
    SOURCES,
    FeedConflictError,
    FeedLeases,
)
from infra.postgres.projection_store import EventGapError
from infra.server.shutdown import stop_on_signals
from projections.ports import RebuildableStore
from projections.runner import Progress as RunProgress
from projections.runner import StreamRunner, rebuild
from projections.search import SearchUnavailableError

PAUSE = 1.0  # seconds between attempts while the search backend is unreachable
log = logging.getLogger(__name__)


def claim(label: str, name: str, source: str, *, switching: bool = False) -> FeedLeases:
    """This process's lease on feeding ``name`` from ``source``, or a clear refusal."""
    leases = bootstrap.feed_leases(label)
    try:
        leases.claim(name, source, switching=switching)
    except FeedConflictError as error:
        leases.close()
        raise CommandError(str(error)) from None
    except BaseException:
        leases.close()  # PostgreSQL away: the caller may try again with a new lease
        raise
    return leases


class Command(BaseCommand):
    help = "Run, inspect or rebuild projectors."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="follow the event log and apply it")
        run.add_argument("name", choices=sorted(bootstrap.PROJECTORS))
        run.add_argument("--batch-size", type=int, default=None)
        run.add_argument("--until-caught-up", action="store_true", help="exit when at the head")
        run.add_argument("--source", choices=SOURCES, default=LOG, help="log (default) | kafka")
        sub.add_parser(
            "run-all",
            help="every projector, the e-mail sweeper and the SLA check, in threads of this "
            "process (what `make run` starts beside the web server)",
        )
        sub.add_parser("status", help="position and lag of every projector")
        reb = sub.add_parser("rebuild", help="rebuild from zero beside the live copy, then swap")
        reb.add_argument("name", choices=sorted(bootstrap.PROJECTORS))
        reb.add_argument("--batch-size", type=int, default=None)
        reb.add_argument("--source", choices=SOURCES, default=LOG, help="the mode it serves")

    def handle(self, *args: Any, **options: Any) -> None:
        metrics.serve_if_configured()  # DESKSTREAM_METRICS_PORT: this process's own
        try:
            self.act(options)
        finally:
            bootstrap.close_analytics()

    def act(self, options: dict[str, Any]) -> None:
        action = options["action"]
        if action == "status":
            self.status()
        elif action == "run":
            if options["source"] == KAFKA:
                self.run_kafka(options["name"], options["batch_size"], options["until_caught_up"])
            else:
                self.run(options["name"], options["batch_size"], options["until_caught_up"])
        elif action == "rebuild":
            self.rebuild(options["name"], options["batch_size"], options["source"])
        elif action == "run-all":
            self.run_all()
        else:  # pragma: no cover - argparse refuses others
            raise CommandError(f"unknown action {action}")

    def status(self) -> None:
        head = bootstrap.event_source().head()
        table = Table(title=f"Projectors (log head {head})")
        for col in ("projector", "source", "position", "lag (events)", "where"):
            table.add_column(
                col, justify="right" if col in ("position", "lag (events)") else "left"
            )
        names = [*sorted(bootstrap.STORES), bootstrap.ANALYTICS]
        for name in names:
            try:
                row = bootstrap.projector_status(name, head)
            except (SearchUnavailableError, AnalyticsUnavailableError) as error:
                table.add_row(name, "?", "?", "?", f"unavailable: {error}")
                continue
            position = "in use" if row["position"] is None else str(row["position"])
            lag = "?" if row["lag"] is None else str(row["lag"])
            table.add_row(name, row["source"], position, lag, row["where"])
        Console(file=cast(IO[str], self.stdout), width=160).print(table)

    def run(self, name: str, batch_size: int | None, until_caught_up: bool) -> None:
        leases = claim(f"projector run {name}", name, LOG)
        try:
            runner = bootstrap.runner(name)
            if batch_size:
                runner.batch_size = batch_size
            if until_caught_up:
                runner.catch_up()
                self.stdout.write(f"{name} at {runner.store.position()}")
                return
            stop = stop_on_signals()
            self.stdout.write(f"{name}: following the log from {runner.store.position()}")
            while not stop.is_set():
                try:
                    runner.run(stop)
                except SearchUnavailableError as error:
                    # Paused: the batch failed before its position moved; resumes from there.
                    log.warning("%s paused, retrying in %.0f s: %s", name, PAUSE, error)
                    stop.wait(PAUSE)
        finally:
            leases.close()

    def run_all(self) -> None:
        stop = stop_on_signals()
        # The push projector stays in the web server: with the in-memory channel layer its
        # frames only reach sockets of its own process.
        threads = bootstrap.start_in_process(stop, push=False, label="projector run-all")
        self.stdout.write(f"projectors running: {', '.join(t.name for t in threads)}")
        self.stdout.flush()
        # Started by ``make run``: also stop when the launcher is gone (even if SIGKILLed).
        parent = int(os.environ.get("DESKSTREAM_PARENT_PID", "0"))
        while not stop.wait(1.0):
            if parent and os.getppid() != parent:
                self.stdout.write("the launcher is gone; stopping")
                break
        bootstrap.close()

    def run_kafka(self, name: str, batch_size: int | None, until_caught_up: bool) -> None:
        try:
            bootstrap.kafka_store(name)
        except KeyError as error:
            raise CommandError(error.args[0]) from None
        stop = stop_on_signals()
        # PostgreSQL or the broker may still be starting (or full): taking the lease is retried
        # too; a feeder of the other source refuses it (a CommandError: not retried).
        held: list[Any] = []
        keep_running(
            lambda: held.append(claim(f"projector run {name} --source kafka", name, KAFKA)),
            stop,
            what=name,
            reset=reset_database,
        )
        if not held:
            return
        try:
            self._consume(name, batch_size, until_caught_up, stop)
        finally:
            held[0].close()

    def _consume(
        self, name: str, batch_size: int | None, until_caught_up: bool, stop: threading.Event
    ) -> None:
        runners: list[StreamRunner] = []  # the broker may still be starting: retried
        keep_running(lambda: runners.append(bootstrap.kafka_runner(name)), stop, what=name)
        if not runners:
            return
        runner = runners[0]
        if batch_size:
            runner.batch_size = batch_size
        try:
            if until_caught_up:
                applied = runner.catch_up()
                self.stdout.write(f"{name}: applied {applied} events from Kafka")
                return
            self.stdout.write(f"{name}: consuming {bootstrap.group_id(name)}")
            # Database and broker outages are retried; a version gap stops the process.
            keep_running(lambda: runner.run(stop), stop, what=name, reset=reset_database)
        except EventGapError as error:
            raise CommandError(str(error)) from error
        finally:
            started = time.monotonic()
            runner.source.close()  # leaves the group: its partitions go to the others now
            log.info("%s: left the group in %.2f s", name, time.monotonic() - started)

    def rebuild(self, name: str, batch_size: int | None, source_name: str = LOG) -> None:
        try:
            live: RebuildableStore = bootstrap.projection_store(name)
        except DirectoryInUseError as error:
            raise CommandError(
                f"{error}. Stop `make run` first: under chDB the web server owns the analytics "
                "data (ADR 0030)."
            ) from None
        if source_name == KAFKA:
            try:
                live = bootstrap.kafka_store(name)
            except KeyError as error:
                raise CommandError(error.args[0]) from None
        # The rebuild is the way from one source to the other; it still refuses while a
        # feeder of the other source runs (it would write the tables the swap replaces).
        label = f"projector rebuild {name}" + (" --source kafka" if source_name == KAFKA else "")
        leases = claim(label, name, source_name, switching=True)
        try:
            self._rebuild(name, live, batch_size)
        finally:
            leases.close()

    def _rebuild(self, name: str, live: RebuildableStore, batch_size: int | None) -> None:
        source = bootstrap.event_source()
        columns = (
            TextColumn(f"rebuild {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]:>9,.0f} ev/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=Console(file=cast(IO[str], self.stdout))) as bar:
            task = bar.add_task("rebuild", total=source.head() or 1, rate=0.0)

            def progress(p: RunProgress) -> None:
                bar.update(task, completed=p.done, total=max(p.total, 1), rate=p.rate)

            position = rebuild(
                source,
                live,
                live.shadow,
                live.swap_in,
                batch_size=batch_size or bootstrap.runner(name).batch_size,
                on_progress=progress,
            )
        self.stdout.write(f"{name} rebuilt and swapped in at position {position}")
