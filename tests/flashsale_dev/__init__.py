"""The local platform FlashSale is tested and demonstrated on.

Real Redis, PostgreSQL, Apache Kafka, Prometheus and (in `flashsale_dev.cluster`) a real Kubernetes
control plane, each started as a local process on free loopback ports, stopped without leftovers.
Nothing here is mocked: this package only installs, starts, watches and stops the real thing.
"""

from flashsale_dev.platform import LocalPlatform

__all__ = ["LocalPlatform"]
