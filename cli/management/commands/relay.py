"""``manage.py relay``: publish the event log to the Kafka topic (distributed mode).

Creates the topic with ``DESKSTREAM_KAFKA_PARTITIONS`` partitions if it does not exist, then
follows the log; ``--until-caught-up`` publishes up to the log's end and exits.
Run one relay per topic (a second one waits on the first's lock: a hot standby).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from command_api.application import get_application
from config import bootstrap
from infra.kafka.resilience import keep_running, reset_database
from infra.observability import metrics
from infra.server.shutdown import stop_on_signals


class Command(BaseCommand):
    help = "Publish the event log to Kafka."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--until-caught-up", action="store_true", help="exit at the head")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        metrics.serve_if_configured()  # DESKSTREAM_METRICS_PORT: this process's own
        stop = stop_on_signals()
        created: list[bool] = []  # the broker may still be starting: retried like the rest
        keep_running(lambda: created.append(bootstrap.ensure_topic()), stop, what="relay: topic")
        relay = bootstrap.relay()
        if options["batch_size"]:
            relay.batch_size = options["batch_size"]
        event_store = getattr(get_application().recorder, "datastore", None)

        def reset() -> None:  # after a database or broker outage
            relay.reset()
            reset_database(getattr(event_store, "pool", None))

        try:
            position: list[int] = []
            keep_running(lambda: position.append(relay.position()), stop, what="relay", reset=reset)
            self.stdout.write(
                f"relay: topic {relay.topic} ({'created' if any(created) else 'exists'}), "
                f"from position {position[-1] if position else '?'}"
            )
            if options["until_caught_up"]:
                published = relay.catch_up()
                self.stdout.write(f"relay: published {published}, at {relay.position()}")
                return
            keep_running(lambda: relay.run(stop), stop, what="relay", reset=reset)
        finally:
            relay.close()
