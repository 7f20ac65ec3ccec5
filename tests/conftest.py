"""Tiers are markers; fixtures come from flashsale_dev.pytest_plugin (see pyproject's addopts)."""

from __future__ import annotations

import pytest

_TIER_BY_DIRECTORY = {
    "unit": "unit",
    "integration": "integration",
    "cluster": "cluster",
    "e2e": "e2e",
    "chaos": "chaos",
    "kind": "kind",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test carries its tier's marker, from its directory, so `-m unit` selects exactly those."""
    for item in items:
        tier = _TIER_BY_DIRECTORY.get(item.path.parent.name)
        if tier and not item.get_closest_marker(tier):
            item.add_marker(getattr(pytest.mark, tier))
