"""``manage.py relay``: publish the event log to the Kafka topic (distributed mode).

Creates the topic with ``DESKSTREAM_KAFKA_PARTITIONS`` partitions if it does not exist, then
follows the log; ``--until-caught-up`` publishes up to the log's end and exits.
Run one relay per topic (a second one waits on the first's lock: a hot standby).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from config import bootstrap
from infra.server.shutdown import stop_on_signals


class Command(BaseCommand):
    help = "Publish the event log to Kafka."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--until-caught-up", action="store_true", help="exit at the head")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        created = bootstrap.ensure_topic()
        relay = bootstrap.relay()
        if options["batch_size"]:
            relay.batch_size = options["batch_size"]
        try:
            self.stdout.write(
                f"relay: topic {relay.topic} ({'created' if created else 'exists'}), "
                f"from position {relay.position()}"
            )
            if options["until_caught_up"]:
                published = relay.catch_up()
                self.stdout.write(f"relay: published {published}, at {relay.position()}")
                return
            stop = stop_on_signals()
            relay.run(stop)
        finally:
            relay.close()
