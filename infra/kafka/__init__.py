"""Kafka adapters: the relay (notification log -> topic) and the projectors' stream source."""
