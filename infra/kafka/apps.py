from django.apps import AppConfig


class KafkaConfig(AppConfig):
    name = "infra.kafka"
    label = "kafka_relay"
    verbose_name = "Kafka relay position"
    default_auto_field = "django.db.models.BigAutoField"
