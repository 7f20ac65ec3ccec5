"""The spec model says what manifests/crd.yaml says, and validation turns bad specs into Problems."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flashsale_dev.operator_crd import (
    EXAMPLE,
    INVALID_CHANGES,
    INVALID_SPECS,
    STARTS_AT,
    InvalidChange,
    InvalidSpec,
    minimal_spec,
    spec_schema,
    with_field,
)
from flashsale_operator.spec import TOLERATIONS, FlashSaleSpec, parse_spec
from flashsale_operator.validation import CLOCK_SKEW_GRACE, Problem, check_change, check_new, check_spec

pytestmark = pytest.mark.unit

# The constraints a JSON schema states about one value; the rest (titles, types) may differ in form.
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern", "enum",
           "maxItems", "maxProperties")  # fmt: skip


def _crd_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """`value` with the schema's defaults filled in, the way the API server does (nested ones too)."""
    if not isinstance(value, dict):
        return value
    filled = dict(value)
    for name, prop in schema.get("properties", {}).items():
        if name not in filled and "default" in prop:
            filled[name] = prop["default"]
        if name in filled:
            filled[name] = _crd_defaults(filled[name], prop)
    return filled


def _model_schema(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow pydantic's $ref and drop its `| None` (the CRD says optional by leaving a field out)."""
    if "$ref" in schema:
        return _model_schema(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    return _model_schema(options[0], defs) if len(options) == 1 else schema


def _bounds(schema: dict[str, Any]) -> dict[str, Any]:
    bounds = {key: schema[key] for key in _BOUNDS if key in schema}
    if bounds.get("exclusiveMinimum") is True:  # OpenAPI v3.0 flags `minimum`; pydantic gives the number
        bounds["exclusiveMinimum"] = bounds.pop("minimum")
    return bounds


def _compare(crd: dict[str, Any], model: dict[str, Any], defs: dict[str, Any], path: str) -> None:
    model = _model_schema(model, defs)
    assert _bounds(crd) == _bounds(model), path
    assert set(crd.get("required", [])) == set(model.get("required", [])), path
    for key in ("items", "additionalProperties"):
        if isinstance(crd.get(key), dict) and isinstance(model.get(key), dict):
            _compare(crd[key], model[key], defs, f"{path}.{key}")
    if "properties" in model:
        assert set(crd["properties"]) == set(model["properties"]), path
    for name, prop in crd.get("properties", {}).items():
        if name in model.get("properties", {}):
            _compare(prop, model["properties"][name], defs, f"{path}.{name}")
        elif isinstance(model.get("additionalProperties"), dict):  # fixed keys in the CRD, a map in the model
            _compare(prop, model["additionalProperties"], defs, f"{path}.{name}")


def test_the_crds_bounds_patterns_and_required_fields_are_the_models() -> None:
    model = FlashSaleSpec.model_json_schema(by_alias=True)
    _compare(spec_schema(), model, model["$defs"], "spec")
    # The model keeps tolerations as plain dicts (what a pod spec takes), checked by their own adapter.
    tolerations = TOLERATIONS.json_schema(by_alias=True)
    crd = spec_schema()["properties"]["isolation"]["properties"]["tolerations"]
    _compare(crd, tolerations, tolerations["$defs"], "spec.isolation.tolerations")


def test_the_models_defaults_are_the_crds_defaults() -> None:
    defaulted_by_model = parse_spec(minimal_spec()).model_dump(mode="json", by_alias=True, exclude_none=True)
    assert defaulted_by_model == _crd_defaults(minimal_spec(), spec_schema())


def test_a_spec_with_only_the_required_fields_is_complete() -> None:
    parsed, problems = check_spec(minimal_spec())
    assert problems == []
    assert parsed is not None
    assert (parsed.stock, parsed.per_user_limit, parsed.payment_timeout_seconds) == (10, 1, 900)
    assert parsed.starts_at == STARTS_AT
    assert parsed.schedule.prewarm_seconds == 300
    assert parsed.paused is False
    assert (parsed.gateway.replicas, parsed.gateway.service_type) == (2, "LoadBalancer")
    assert (parsed.gateway.user_rate_limit.requests, parsed.gateway.user_rate_limit.per_seconds) == (5, 1.0)
    assert (parsed.queue.partitions, parsed.queue.mode) == (12, "shared")
    consumers = parsed.consumers
    assert (consumers.min_replicas, consumers.max_replicas, consumers.lag_threshold) == (1, None, 1000)
    assert (consumers.scale_down_stabilization_seconds, consumers.scaler) == (60, "builtin")
    assert consumers.ceiling(parsed.queue.partitions) == 12  # unset maxReplicas: the partitions
    # Unset: the gateway's own default, and the platform's default isolation.
    assert parsed.gateway.admission_rate is None
    assert parsed.gateway.resources is None
    assert parsed.isolation.node_selector is None
    assert parsed.isolation.tolerations is None


def test_optional_fields_parse_to_what_a_pod_spec_takes() -> None:
    spec = with_field(minimal_spec(), "gateway.resources", {"requests": {"cpu": 1, "memory": "256Mi"}})
    spec = with_field(spec, "isolation.tolerations", [{"key": "dedicated", "operator": "Exists"}])
    parsed, problems = check_spec(spec)
    assert problems == []
    assert parsed is not None
    assert parsed.gateway.resources == {"requests": {"cpu": "1", "memory": "256Mi"}}
    assert parsed.isolation.tolerations == [{"key": "dedicated", "operator": "Exists"}]


# A commented-out field in the example: "# key: value", "# key:" or "# - item", at any indentation.
_COMMENTED_FIELD = re.compile(r"^(\s*)# (\s*(?:[A-Za-z]+:(?: |$)|- ))", re.MULTILINE)


@pytest.mark.parametrize("uncomment", [False, True], ids=["as shipped", "every optional field set"])
def test_the_example_is_a_valid_sale(uncomment: bool) -> None:
    text = EXAMPLE.read_text()
    if uncomment:
        text = _COMMENTED_FIELD.sub(r"\1\2", text)
    example = yaml.safe_load(text)
    assert (example["kind"], example["metadata"]["name"]) == ("FlashSale", "summer-drop")
    parsed, problems = check_spec(example["spec"])
    assert problems == []
    assert parsed is not None
    assert (parsed.stock, parsed.per_user_limit, parsed.payment_timeout_seconds) == (100, 1, 900)
    if uncomment:  # the example shows every field, each as the model reads it
        assert example["spec"] == parsed.model_dump(mode="json", by_alias=True, exclude_none=True)


@pytest.mark.parametrize("case", INVALID_SPECS.values(), ids=list(INVALID_SPECS))
def test_an_invalid_spec_gives_a_problem_naming_its_field(case: InvalidSpec) -> None:
    parsed, problems = check_spec(with_field(minimal_spec(), case.path, case.value))
    assert parsed is None
    assert (case.field, case.reason) in {(p.field, p.reason) for p in problems}, problems
    assert all(p.field in p.message for p in problems)


def test_at_creation_the_start_may_not_be_past_beyond_the_clock_skew_grace() -> None:
    just_now = STARTS_AT + CLOCK_SKEW_GRACE
    assert check_new(minimal_spec(), just_now)[1] == []
    parsed, problems = check_new(minimal_spec(), just_now + timedelta(seconds=1))
    assert parsed is None
    assert [(p.field, p.reason) for p in problems] == [("spec.schedule.startsAt", "StartsInThePast")]
    parsed, problems = check_new(minimal_spec(), STARTS_AT + timedelta(hours=2))
    assert {p.reason for p in problems} == {"StartsInThePast", "EndsInThePast"}


def test_creation_checks_include_the_spec_checks() -> None:
    parsed, problems = check_new(with_field(minimal_spec(), "stock", 0), STARTS_AT)
    assert parsed is None
    assert [p.reason for p in problems] == ["OutOfRange"]


@pytest.mark.parametrize(
    ("consumers", "partitions", "ceiling"),
    [({}, 12, 12), ({"maxReplicas": 4}, 12, 4), ({"maxReplicas": 50}, 12, 12), ({"minReplicas": 3}, 3, 3)],
)
def test_the_consumer_ceiling_is_max_replicas_but_never_above_the_partitions(
    consumers: dict[str, int], partitions: int, ceiling: int
) -> None:
    spec = with_field(with_field(minimal_spec(), "consumers", consumers), "queue.partitions", partitions)
    parsed, problems = check_spec(spec)
    assert problems == []
    assert parsed is not None
    assert parsed.consumers.ceiling(parsed.queue.partitions) == ceiling


def _changed(path: str, value: Any) -> FlashSaleSpec:
    return parse_spec(with_field(minimal_spec(), path, value))


@pytest.mark.parametrize(
    ("path", "value", "prewarmed", "expected"),
    [
        ("product.sku", "KETTLE-2", False, [("spec.product.sku", "ImmutableField")]),
        ("stock", 20, True, [("spec.stock", "ImmutableField")]),
        ("stock", 20, False, []),
        ("queue.partitions", 6, False, [("spec.queue.partitions", "PartitionsCannotShrink")]),
        ("queue.partitions", 24, True, []),
        ("gateway.replicas", 5, True, []),
        ("schedule.endsAt", "2030-11-11T14:00:00Z", True, []),
        ("paused", True, True, []),
        ("product.name", "Tea kettle", True, []),
        ("queue.mode", "dedicated", False, [("spec.queue.mode", "ImmutableField")]),
        ("consumers", {"minReplicas": 2, "maxReplicas": 8, "lagThreshold": 10}, True, []),
        ("consumers.scaler", "keda", True, []),
    ],
)
def test_what_a_running_sale_may_and_may_not_change(
    path: str, value: Any, prewarmed: bool, expected: list[tuple[str, str]]
) -> None:
    problems = check_change(parse_spec(minimal_spec()), _changed(path, value), prewarmed=prewarmed)
    assert [(p.field, p.reason) for p in problems] == expected
    assert all(p.field in p.message for p in problems)


@pytest.mark.parametrize("case", INVALID_CHANGES.values(), ids=list(INVALID_CHANGES))
def test_an_invalid_change_gives_a_problem_naming_its_field(case: InvalidChange) -> None:
    new = _changed(case.path, case.value)
    for prewarmed in (False, True):
        problems = check_change(parse_spec(minimal_spec()), new, prewarmed=prewarmed)
        assert [(p.field, p.reason) for p in problems] == [(case.field, case.reason)]
        assert case.field in problems[0].message


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_PATHS = ["product", "product.sku", "product.price", "product.currency", "product.imageUrl", "stock",
          "perUserLimit", "schedule", "schedule.startsAt", "schedule.endsAt", "paymentTimeoutSeconds",
          "paused", "gateway", "gateway.userRateLimit.perSeconds", "gateway.resources",
          "gateway.resources.limits", "queue.partitions", "queue.mode", "consumers", "consumers.minReplicas",
          "consumers.maxReplicas", "consumers.lagThreshold", "consumers.scaleDownStabilizationSeconds",
          "consumers.scaler", "isolation", "isolation.nodeSelector", "isolation.tolerations"]  # fmt: skip
_SPECS = st.one_of(
    st.dictionaries(st.text(max_size=24), _JSON, max_size=8),
    st.builds(lambda path, value: with_field(minimal_spec(), path, value), st.sampled_from(_PATHS), _JSON),
)


def _well_formed(problem: Problem) -> bool:
    return problem.field.startswith("spec") and bool(re.fullmatch(r"[A-Z][A-Za-z]+", problem.reason))


@settings(max_examples=400, deadline=None, database=None)
@given(_SPECS)
def test_check_spec_never_raises_and_gives_a_model_or_a_problem(spec: dict[str, Any]) -> None:
    for parsed, problems in (check_spec(spec), check_new(spec, STARTS_AT)):
        assert (parsed is None) == bool(problems)
        assert all(_well_formed(problem) and problem.message for problem in problems)
