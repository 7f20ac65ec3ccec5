"""The operator's own configuration: this platform's middleware, images, default isolation and the
isolation a tenant's sale may ask for (the allow-list, isolation.py).

It comes from the operator's namespace, never from a sale: a ConfigMap given as environment
(`FLASHSALE_OPERATOR_*`) and a Secret mounted as files named like the variables in
`FLASHSALE_OPERATOR_SECRETS_DIR` (the database URLs, the platform's user-token and payment keys). The
operator writes what the sale's pods need into each sale's own Secret (pods mount Secrets only from
their own namespace), so it never needs to read any Secret through the API: the sale's keys DERIVED
from the platform's (never the platform's keys themselves), and the gateway's and the consumer's own
database URLs (each PostgreSQL role granted only what that process does; `database_url` is the
operator's own, the schema's owner, for the migration and the prewarm).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, Final

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flashsale_sale import __version__

ENV_PREFIX: Final = "FLASHSALE_OPERATOR_"
SECRETS_DIR_ENV: Final = "FLASHSALE_OPERATOR_SECRETS_DIR"

# Where sale pods go when the sale says nothing: the tainted pool that only sales tolerate.
DEFAULT_NODE_SELECTOR: Final = {"pool": "flashsale"}
DEFAULT_TOLERATIONS: Final = [
    {"key": "dedicated", "operator": "Equal", "value": "flashsale", "effect": "NoSchedule"}
]
DEFAULT_PRIORITY_CLASS: Final = "flashsale-sale"
# Who may scrape the sale pods' admin/metrics port (NetworkPolicy peers): the cluster's Prometheus.
DEFAULT_METRICS_SCRAPERS: Final = [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
]


def project_image(name: str) -> str:
    """`flashsale/<name>:<version>`: every image of a release carries the release's one version."""
    return f"flashsale/{name}:{__version__}"


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    namespace: Annotated[str, Field(min_length=1)] = "flashsale-system"  # the operator's own
    redis_url: Annotated[str, Field(pattern=r"^rediss?://")]
    kafka_bootstrap_servers: Annotated[str, Field(min_length=3)]
    database_url: Annotated[SecretStr, Field(min_length=1)]
    user_token_key: Annotated[SecretStr, Field(min_length=16)]
    payment_key: Annotated[SecretStr, Field(min_length=16)]  # the platform's: derives each sale's
    gateway_database_url: Annotated[SecretStr, Field(min_length=1)]  # a login in role flashsale_gateway
    consumer_database_url: Annotated[SecretStr, Field(min_length=1)]  # a login in role flashsale_consumer

    # The project's images (`make images`), tagged with the version of this operator.
    gateway_image: str = project_image("gateway")
    consumer_image: str = project_image("consumer")
    # A dedicated queue's broker: configured like the official apache/kafka image (docs/operator.md).
    kafka_image: str = project_image("kafka")
    default_node_selector: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_NODE_SELECTOR))
    default_tolerations: list[dict[str, Any]] = Field(default_factory=lambda: list(DEFAULT_TOLERATIONS))
    default_priority_class_name: str = DEFAULT_PRIORITY_CLASS
    # What a tenant's spec.isolation may ask for (isolation.py); unset = only the default isolation.
    allowed_node_selectors: list[dict[str, str]] | None = None
    allowed_tolerations: list[dict[str, Any]] | None = None
    allowed_priority_class_names: list[str] | None = None
    kafka_replication_factor: Annotated[int, Field(ge=1, le=5)] = 1

    metrics_port: Annotated[int, Field(ge=1, le=65_535)] = 9090
    # NetworkPolicy peers (JSON) allowed into the sale pods' admin/metrics port (render_network).
    metrics_scrapers: Annotated[list[dict[str, Any]], Field(min_length=1)] = Field(
        default_factory=lambda: [dict(peer) for peer in DEFAULT_METRICS_SCRAPERS]
    )
    status_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    # A teardown still draining after this long is said loudly (a Warning Event, a WARNING log line
    # per period); it keeps waiting all the same (docs/operator.md, Teardown).
    drain_warning_seconds: Annotated[float, Field(gt=0)] = 120.0

    @field_validator(
        "default_node_selector",
        "default_tolerations",
        "allowed_node_selectors",
        "allowed_tolerations",
        "allowed_priority_class_names",
        mode="before",
    )
    @classmethod
    def _json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


def load() -> OperatorConfig:
    """The configuration from the environment and the mounted Secret, or exit 2 with one line each."""
    secrets_dir = os.environ.get(SECRETS_DIR_ENV)
    try:
        if secrets_dir and os.path.isdir(secrets_dir):
            return OperatorConfig(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
        return OperatorConfig()  # type: ignore[call-arg]
    except ValidationError as error:
        for problem in error.errors(include_url=False, include_input=False):
            where = "".join(str(part) for part in problem["loc"][:1]).upper()
            print(f"invalid operator configuration: {ENV_PREFIX}{where}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None
