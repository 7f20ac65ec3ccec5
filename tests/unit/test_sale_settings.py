"""Sale settings: one line per problem naming the variable, exit 2; secrets from mounted files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flashsale_sale.settings import ConsumerSettings, GatewaySettings, load

VALID = {
    "FLASHSALE_SALE_NAME": "spring-sale",
    "FLASHSALE_SALE_ID": "0b7c6f2e-uid",
    "FLASHSALE_STOCK": "1000",
    "FLASHSALE_STARTS_AT": "2026-12-01T10:00:00Z",
    "FLASHSALE_ENDS_AT": "2026-12-01T11:00:00Z",
    "FLASHSALE_REDIS_URL": "redis://127.0.0.1:6379/0",
    "FLASHSALE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "FLASHSALE_DATABASE_URL": "postgresql://u:p@127.0.0.1/db",
}
GATEWAY = {
    "FLASHSALE_PRODUCT_SKU": "SKU-1",
    "FLASHSALE_PRODUCT_NAME": "A thing",
    "FLASHSALE_PRODUCT_PRICE": "9.99",
    "FLASHSALE_PRODUCT_CURRENCY": "EUR",
    "FLASHSALE_SALE_TOKEN_KEY": "u" * 32,
    "FLASHSALE_SALE_PAYMENT_KEY": "p" * 32,
    "FLASHSALE_ORDER_PATH_KEY": "o" * 32,
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with no FLASHSALE_* variable but the ones the test sets."""
    for name in list(os.environ):
        if name.startswith("FLASHSALE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_valid_consumer_settings_load_with_their_defaults(env: pytest.MonkeyPatch) -> None:
    for name, value in VALID.items():
        env.setenv(name, value)
    settings = load(ConsumerSettings)
    assert settings.group == "flashsale.0b7c6f2e-uid.orders"
    assert settings.topic == "flashsale.0b7c6f2e-uid.reservations"
    assert settings.batch_size == 500


def test_every_problem_is_one_stderr_line_naming_its_variable(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in VALID.items():
        env.setenv(name, value)
    env.setenv("FLASHSALE_STOCK", "lots")
    env.setenv("FLASHSALE_REDIS_URL", "http://nope")
    env.setenv("FLASHSALE_BATCH_SIZE", "0")
    env.delenv("FLASHSALE_DATABASE_URL")
    with pytest.raises(SystemExit) as exited:
        load(ConsumerSettings)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    for variable in ("STOCK", "REDIS_URL", "BATCH_SIZE", "DATABASE_URL"):
        assert sum(f"FLASHSALE_{variable}:" in line for line in lines) == 1, lines


def test_a_schedule_that_ends_before_it_starts_is_refused(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in VALID.items():
        env.setenv(name, value)
    env.setenv("FLASHSALE_ENDS_AT", "2026-12-01T09:00:00Z")
    with pytest.raises(SystemExit):
        load(ConsumerSettings)
    assert "FLASHSALE_ENDS_AT" in capsys.readouterr().err


def test_gateway_settings_name_their_missing_keys(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in VALID.items():
        env.setenv(name, value)
    with pytest.raises(SystemExit) as exited:
        load(GatewaySettings)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    for name in GATEWAY:
        assert f"{name}:" in err


def test_secrets_come_from_files_in_the_secrets_dir(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in {**VALID, **GATEWAY}.items():
        if name not in ("FLASHSALE_DATABASE_URL", "FLASHSALE_SALE_TOKEN_KEY"):
            env.setenv(name, value)
    (tmp_path / "FLASHSALE_DATABASE_URL").write_text("postgresql://from-a-file/db")
    (tmp_path / "FLASHSALE_SALE_TOKEN_KEY").write_text("f" * 32)
    env.setenv("FLASHSALE_SECRETS_DIR", str(tmp_path))
    settings = load(GatewaySettings)
    assert settings.database_url.get_secret_value() == "postgresql://from-a-file/db"
    assert settings.sale_token_key.get_secret_value() == "f" * 32
