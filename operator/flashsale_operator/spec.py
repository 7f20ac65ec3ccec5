"""The FlashSale resource as typed models: what the platform team asks for, and what the operator reports.

The CRD's openAPIV3Schema (manifests/crd.yaml) is the first line: the API server refuses what it
can express and fills in the defaults. These models read the stored object (camelCase, defaults
already applied) and carry the same types, bounds, patterns and defaults, so a unit test can read a
spec the server never saw and reach the same verdict (tests/unit/test_operator_spec.py holds them
to the CRD). Types are strict like the API server's: "5" is not a number, 1 is not a boolean.
What neither can express (a start already past, limits that make no sense together) is checked by
`flashsale_operator.validation`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    with_config,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

GROUP: Final = "flashsale.dev"
VERSION: Final = "v1alpha1"
PLURAL: Final = "flashsales"
KIND: Final = "FlashSale"
RESOURCE: Final = (GROUP, VERSION, PLURAL)

MAX_STOCK: Final = 10_000_000
MAX_PER_USER_LIMIT: Final = 1000
MAX_PAYMENT_TIMEOUT_SECONDS: Final = 86_400
MAX_PREWARM_SECONDS: Final = 86_400
MAX_GATEWAY_REPLICAS: Final = 100
MAX_PARTITIONS: Final = 256
MAX_CONSUMER_REPLICAS: Final = MAX_PARTITIONS
MAX_LAG_THRESHOLD: Final = 1_000_000_000
MAX_STABILIZATION_SECONDS: Final = 3600  # consumers.scaleDownStabilizationSeconds
MAX_NODE_SELECTOR: Final = 32
MAX_TOLERATIONS: Final = 32
MAX_TOLERATION_SECONDS: Final = 31_536_000  # a year
MAX_RESOURCES: Final = 16  # entries in requests or limits
MAX_QUANTITY: Final = 10**15  # an integer quantity (bytes, cores)
MAX_TIMESTAMP_LENGTH: Final = 64

# The ISO 4217 currencies in circulation; funds codes, precious metals, bond units, XDR and the test
# codes are left out (nobody prices a sale in them). The CRD's enum is this same list.
_CURRENCY_CODES: Final = """
AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF
CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ
GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR
PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC
SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF
XPF YER ZAR ZMW ZWG
"""
CURRENCIES: Final = frozenset(_CURRENCY_CODES.split())

SKU_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PRICE_PATTERN: Final = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$"  # a decimal string, at most 2 decimals
# An absolute http(s) URL of plain characters. The CRD says it with this pattern alone (see imageUrl there).
IMAGE_URL_PATTERN: Final = (
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#]([A-Za-z0-9._~!$&'()*+,;=:@/?#-]|%[0-9A-Fa-f]{2})*)?$"
)
LABEL_VALUE_PATTERN: Final = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
TOLERATION_KEY_PATTERN: Final = (
    r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$"
)
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY_PATTERN: Final = (
    r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+))?$"
)
# What the API server's date-time format takes, in-range fields only; pydantic alone also takes a
# space for the T, bare dates and unix seconds, which the server refuses.
_RFC3339: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]+)?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)


class _Model(BaseModel):
    # The stored object is camelCase; unknown fields were already pruned by the structural schema.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="ignore",
        strict=True,
        allow_inf_nan=False,
    )


def _rfc3339(value: object) -> object:
    if isinstance(value, datetime):  # built in Python, not read from the API
        return value
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_LENGTH or not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format", "must be an RFC 3339 date-time with a time zone, e.g. 2030-11-11T12:00:00Z"
        )
    return value


def _iso_4217(value: str) -> str:
    if value not in CURRENCIES:
        raise PydanticCustomError("enum", "must be an ISO 4217 currency code such as USD or EUR")
    return value


def _integer_quantity(value: object) -> object:
    # int-or-string like the API's own quantities: an integer is kept as its decimal string.
    if type(value) is int:
        if not 0 <= value <= MAX_QUANTITY:
            raise PydanticCustomError("quantity_range", "an integer quantity must be between 0 and 10^15")
        return str(value)
    return value


# json_schema_extra: what the validators check, said in the JSON schema too, as the CRD says it.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    Field(strict=False, json_schema_extra={"maxLength": MAX_TIMESTAMP_LENGTH}),
]
Quantity = Annotated[
    str,
    Field(max_length=64, pattern=QUANTITY_PATTERN, json_schema_extra={"minimum": 0, "maximum": MAX_QUANTITY}),
    BeforeValidator(_integer_quantity),  # after Field, or the JSON schema loses the pattern
]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]


@with_config(ConfigDict(strict=True, extra="ignore"))
class _Toleration(TypedDict, total=False):
    key: Annotated[str, Field(max_length=316, pattern=TOLERATION_KEY_PATTERN)]
    operator: Literal["Exists", "Equal"]
    value: LabelValue
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    tolerationSeconds: Annotated[int, Field(ge=0, le=MAX_TOLERATION_SECONDS)]


def _toleration_rules(toleration: _Toleration) -> _Toleration:
    # core/v1's own rules, checked here (and by the CRD's CEL) so a sale's pods are never refused later.
    exists = toleration.get("operator", "Equal") == "Exists"
    if exists and toleration.get("value"):
        raise PydanticCustomError("toleration", "value must be empty when operator is Exists")
    if not toleration.get("key") and not exists:
        raise PydanticCustomError("toleration", "operator must be Exists when key is empty")
    if "tolerationSeconds" in toleration and toleration.get("effect") != "NoExecute":
        raise PydanticCustomError("toleration", "tolerationSeconds is only allowed with effect NoExecute")
    return toleration


TOLERATIONS: Final = TypeAdapter(
    Annotated[
        list[Annotated[_Toleration, AfterValidator(_toleration_rules)]], Field(max_length=MAX_TOLERATIONS)
    ]
)


def _tolerations(value: object) -> object:
    # Checked like core/v1 Tolerations, kept as the plain dicts a pod spec takes.
    return value if value is None else TOLERATIONS.validate_python(value)


class Product(_Model):
    sku: Annotated[str, Field(max_length=64, pattern=SKU_PATTERN)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    price: Annotated[str, Field(max_length=13, pattern=PRICE_PATTERN)]
    currency: Annotated[
        str, AfterValidator(_iso_4217), Field(json_schema_extra={"enum": [*sorted(CURRENCIES)]})
    ]
    description: Annotated[str, Field(max_length=4000)] = ""
    image_url: Annotated[str, Field(max_length=2000, pattern=IMAGE_URL_PATTERN)] | None = None

    @property
    def price_value(self) -> Decimal:
        return Decimal(self.price)


class Schedule(_Model):
    starts_at: Timestamp
    ends_at: Timestamp
    prewarm_seconds: Annotated[int, Field(ge=0, le=MAX_PREWARM_SECONDS)] = 300


class UserRateLimit(_Model):
    requests: Annotated[int, Field(ge=1, le=10_000)] = 5
    per_seconds: Annotated[float, Field(gt=0, le=3600)] = 1.0


class Gateway(_Model):
    replicas: Annotated[int, Field(ge=1, le=MAX_GATEWAY_REPLICAS)] = 2
    admission_rate: Annotated[float, Field(gt=0, le=1_000_000)] | None = None  # per replica; None = default
    user_rate_limit: UserRateLimit = UserRateLimit()
    service_type: Literal["LoadBalancer", "ClusterIP", "NodePort"] = "LoadBalancer"
    # A container's ResourceRequirements (requests, limits); integer quantities come back as strings.
    resources: dict[str, Annotated[dict[str, Quantity], Field(max_length=MAX_RESOURCES)]] | None = None


# shared: a topic on the platform's Kafka; dedicated: a single-broker Kafka owned by the sale.
QueueMode = Literal["shared", "dedicated"]
# builtin: the operator's own scaling loop; keda: a KEDA ScaledObject (render_keda) drives an HPA.
Scaler = Literal["builtin", "keda"]


class Queue(_Model):
    partitions: Annotated[int, Field(ge=1, le=MAX_PARTITIONS)] = 12
    mode: QueueMode = "shared"  # immutable once set (the CRD's transition rule, validation.check_change)


class Consumers(_Model):
    """How the consumer replicas follow the Kafka backlog; the replica count itself is the scaler's."""

    min_replicas: Annotated[int, Field(ge=1, le=MAX_CONSUMER_REPLICAS)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=MAX_CONSUMER_REPLICAS)] | None = None  # None: partitions
    lag_threshold: Annotated[int, Field(ge=1, le=MAX_LAG_THRESHOLD)] = 1000  # messages per consumer
    scale_down_stabilization_seconds: Annotated[int, Field(ge=0, le=MAX_STABILIZATION_SECONDS)] = 60
    scaler: Scaler = "builtin"

    def ceiling(self, partitions: int) -> int:
        """The most consumers ever wanted: maxReplicas (unset, the partitions), never above the partitions."""
        return min(self.max_replicas or partitions, partitions)


class Isolation(_Model):
    """Where the sale's pods run; what is left out comes from the platform's default isolation."""

    node_selector: Annotated[dict[str, LabelValue], Field(max_length=MAX_NODE_SELECTOR)] | None = None
    tolerations: Annotated[
        Annotated[list[dict[str, Any]], Field(max_length=MAX_TOLERATIONS)] | None,
        BeforeValidator(_tolerations),
    ] = None
    priority_class_name: Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)] | None = None


class FlashSaleSpec(_Model):
    product: Product
    stock: Annotated[int, Field(ge=1, le=MAX_STOCK)]
    per_user_limit: Annotated[int, Field(ge=1, le=MAX_PER_USER_LIMIT)]
    schedule: Schedule
    payment_timeout_seconds: Annotated[int, Field(ge=1, le=MAX_PAYMENT_TIMEOUT_SECONDS)]
    paused: bool = False
    gateway: Gateway = Gateway()
    queue: Queue = Queue()
    consumers: Consumers = Consumers()
    isolation: Isolation = Isolation()

    @property
    def starts_at(self) -> datetime:
        return self.schedule.starts_at

    @property
    def ends_at(self) -> datetime:
        return self.schedule.ends_at


class Phase(StrEnum):
    SCHEDULED = "Scheduled"
    PREWARMING = "Prewarming"
    READY = "Ready"
    LIVE = "Live"
    PAUSED = "Paused"
    SOLD_OUT = "SoldOut"
    ENDED = "Ended"
    FAILED = "Failed"


def _plain(value: Any) -> Any:
    # Strict models take dicts only; kopf hands out read-only mapping views.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def parse_spec(spec: Mapping[str, Any]) -> FlashSaleSpec:
    """The stored spec as a model; pydantic's ValidationError when it does not fit (see validation)."""
    return FlashSaleSpec.model_validate(_plain(spec))
