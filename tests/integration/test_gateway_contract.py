"""The gateway against its own OpenAPI document (schemathesis), and its settings at start."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flashsale_dev.gateway_process import FLASHSALE, GatewayLauncher, SaleSetup, status
from flashsale_dev.platform import LocalPlatform
from flashsale_dev.pytest_plugin import PostgresSchema, RedisDatabase
from flashsale_dev.waiting import wait_for
from flashsale_sale import gate, tokens
from flashsale_sale.contract import ORDER_PATH_PREFIX, SaleKeys, order_path
from flashsale_sale.db import migrate

SCHEMATHESIS = FLASHSALE.parent / "schemathesis"


@pytest.fixture
def sale(
    redis_db: RedisDatabase, kafka_topic: str, pg_schema: PostgresSchema, platform: LocalPlatform
) -> SaleSetup:
    with pg_schema.connect() as conn:
        migrate(conn)
    return SaleSetup(
        redis_url=redis_db.url,
        kafka_bootstrap_servers=platform.kafka.bootstrap_servers,
        database_url=pg_schema.url,
        kafka_topic=kafka_topic,
        stock=1000,
        per_user_limit=3,
    )


@pytest.fixture
def launch(platform: LocalPlatform, tmp_path: Path) -> Iterator[GatewayLauncher]:
    launcher = GatewayLauncher(platform.reserve_port, tmp_path, os.environ)
    yield launcher
    launcher.stop_all()


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    sale: SaleSetup, launch: GatewayLauncher, redis_db: RedisDatabase, tmp_path: Path
) -> None:
    keys = SaleKeys(sale.sale_id)
    gate.prewarm(redis_db.client, keys, sale.stock)
    gate.set_open(redis_db.client, keys, True)  # live: the buy route is at its busiest
    gateway = launch(sale)
    wait_for(lambda: status(gateway)["state"] == "live", what="state live")
    token = tokens.mint(sale.user_token_key.encode(), "fuzzer")
    # The real order path too, so the fuzzer reaches the buy logic, not only the 404 in front of it.
    config = tmp_path / "schemathesis.toml"
    key = order_path(sale.order_path_key.encode(), sale.sale_id).removeprefix(ORDER_PATH_PREFIX)
    config.write_text(f'[parameters]\n"path.orderKey" = "{key}"\n')
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{gateway.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "7",
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--header",
            f"Authorization: Bearer {token}",
            "--report-dir",
            str(tmp_path / "schemathesis"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")},
    )
    assert "Tested: 8" in run.stdout  # every operation but the document itself, run.stdout[-3000:]
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    held = sale.stock - (gate.remaining(redis_db.client, keys) or 0)
    assert 1 <= held <= sale.per_user_limit  # the fuzzer's one user bought once, however often it tried


def test_help_needs_no_settings() -> None:
    done = subprocess.run(
        [str(FLASHSALE), "gateway", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={},
    )
    assert done.returncode == 0, done.stderr
    assert "gateway" in done.stdout


def test_invalid_settings_exit_2_with_one_line_per_problem(sale: SaleSetup) -> None:
    sale.extra = {"ADMISSION_RATE": "-5", "PORT": "99999", "PRODUCT_CURRENCY": "euro"}
    env = sale.env(8080, os.environ)
    del env["FLASHSALE_USER_TOKEN_KEY"]
    done = subprocess.run(
        [str(FLASHSALE), "gateway"], capture_output=True, text=True, check=False, timeout=120, env=env
    )
    assert done.returncode == 2, done.stderr
    problems = done.stderr.strip().splitlines()
    named = {line.split(":")[1].strip() for line in problems}
    assert named == {
        "FLASHSALE_ADMISSION_RATE",
        "FLASHSALE_PORT",
        "FLASHSALE_PRODUCT_CURRENCY",
        "FLASHSALE_USER_TOKEN_KEY",
    }, problems
    assert all(line.startswith("invalid settings: FLASHSALE_") for line in problems), problems
