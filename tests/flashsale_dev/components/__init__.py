"""The middleware of the local platform, one module each."""

from flashsale_dev.components.base import Component
from flashsale_dev.components.kafka import Kafka
from flashsale_dev.components.postgres import Postgres
from flashsale_dev.components.prometheus import Prometheus
from flashsale_dev.components.redis import Redis

__all__ = ["Component", "Kafka", "Postgres", "Prometheus", "Redis"]
