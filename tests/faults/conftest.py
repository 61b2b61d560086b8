"""The fault suite's fixtures: the system under faults (``test_faults.System``) and the
restartable Kafka-protocol broker it runs on, for every module here."""

from tests.faults.test_faults import system
from tests.support.kafka import restartable_broker

__all__ = ["restartable_broker", "system"]
