"""``manage.py projector run NAME | status | rebuild NAME``: operate the projectors.

``run`` follows the log in this process (one process per projector in production);
``status`` shows each projector's position and lag (for search on OpenSearch also the alias
and the index behind it); ``run`` pauses while the search backend is unreachable and resumes
from its stored position; ``rebuild`` rebuilds from zero beside
the live tables with a progress bar, then swaps the new copy in. ``--source kafka`` (run,
rebuild) is distributed mode: ``run`` consumes the relay's topic as one member of the
projector's consumer group; ``rebuild`` rebuilds from the log, recording the per-aggregate
versions that mode drops duplicates by (stop the projector's consumers first).
"""

from __future__ import annotations

import logging
import os
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
from infra.kafka.resilience import keep_running, reset_database
from infra.postgres.projection_store import EventGapError
from infra.server.shutdown import stop_on_signals
from projections.runner import Progress as RunProgress
from projections.runner import StreamRunner, rebuild
from projections.search import SearchUnavailableError

SOURCES = ("log", "kafka")
PAUSE = 1.0  # seconds between attempts while the search backend is unreachable
log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run, inspect or rebuild projectors."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="follow the event log and apply it")
        run.add_argument("name", choices=sorted(bootstrap.STORES))
        run.add_argument("--batch-size", type=int, default=None)
        run.add_argument("--until-caught-up", action="store_true", help="exit when at the head")
        run.add_argument("--source", choices=SOURCES, default="log", help="log (default) | kafka")
        sub.add_parser(
            "run-all",
            help="every projector, the e-mail sweeper and the SLA check, in threads of this "
            "process (what `make run` starts beside the web server)",
        )
        sub.add_parser("status", help="position and lag of every projector")
        reb = sub.add_parser("rebuild", help="rebuild from zero beside the live copy, then swap")
        reb.add_argument("name", choices=sorted(bootstrap.STORES))
        reb.add_argument("--batch-size", type=int, default=None)
        reb.add_argument("--source", choices=SOURCES, default="log", help="the mode it serves")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "status":
            self.status()
        elif action == "run":
            if options["source"] == "kafka":
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
        for name in sorted(bootstrap.STORES):
            store = bootstrap.store(name)
            where = "PostgreSQL"
            try:
                position = store.position()
                status = getattr(store, "status", None)
                if status is not None:  # OpenSearch: the alias and the index behind it
                    info = status()
                    where = (
                        f"alias {info['alias']} -> index {info['index']} ({info['documents']} docs)"
                    )
                if name in bootstrap.KAFKA_PROJECTORS and store.has_applied_versions():
                    # Fed by Kafka: the position is the contiguous frontier; the lag counts
                    # the events not applied yet (some above the frontier may be).
                    unapplied = bootstrap.kafka_store(name).unapplied()
                    table.add_row(name, "kafka", str(position), str(unapplied), where)
                else:
                    lag = str(max(head - position, 0))
                    table.add_row(name, "log", str(position), lag, where)
            except SearchUnavailableError as error:
                table.add_row(name, "?", "?", "?", f"unavailable: {error}")
        Console(file=cast(IO[str], self.stdout), width=160).print(table)

    def run(self, name: str, batch_size: int | None, until_caught_up: bool) -> None:
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

    def run_all(self) -> None:
        stop = stop_on_signals()
        # The push projector stays in the web server: with the in-memory channel layer its
        # frames only reach sockets of its own process.
        threads = bootstrap.start_in_process(stop, push=False)
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
            store = bootstrap.kafka_store(name)
        except KeyError as error:
            raise CommandError(error.args[0]) from None
        if store.position() > 0 and not store.has_applied_versions():
            raise CommandError(
                f"{name} was built from the log without per-ticket versions: run "
                f"`manage.py projector rebuild {name} --source kafka` once before consuming Kafka"
            )
        stop = stop_on_signals()
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

    def rebuild(self, name: str, batch_size: int | None, source_name: str = "log") -> None:
        source = bootstrap.event_source()
        live = bootstrap.store(name)
        if source_name == "kafka":
            try:
                live = bootstrap.kafka_store(name)
            except KeyError as error:
                raise CommandError(error.args[0]) from None
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
                live.swap_in,  # type: ignore[arg-type]
                batch_size=batch_size or bootstrap.runner(name).batch_size,
                on_progress=progress,
            )
        self.stdout.write(f"{name} rebuilt and swapped in at position {position}")
