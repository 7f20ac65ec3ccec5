"""The gateway against its own OpenAPI document (schemathesis), and its settings at start."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from flashsale_dev.sale import FLASHSALE, LocalSale
from flashsale_sale.contract import ORDER_PATH_PREFIX

SCHEMATHESIS = FLASHSALE.parent / "schemathesis"


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    sale: LocalSale, tmp_path: Path
) -> None:
    sale.stock = 1000
    sale.per_user_limit = 3
    [gateway] = sale.go_live()  # live: the buy route is at its busiest
    token = sale.token("fuzzer")
    # The real order path too, so the fuzzer reaches the buy logic, not only the 404 in front of it.
    config = tmp_path / "schemathesis.toml"
    key = sale.order_path.removeprefix(ORDER_PATH_PREFIX)
    config.write_text(f'[parameters]\n"path.orderKey" = "{key}"\n')
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(config),
            "run",
            f"{gateway.admin_url}/openapi.json",  # the document is on the admin port,
            "--url",
            gateway.url,  # it describes the public one
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
    assert "Tested: 6" in run.stdout  # every public operation, run.stdout[-3000:]
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    held = sale.stock - (sale.gate_remaining() or 0)
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


def test_invalid_settings_exit_2_with_one_line_per_problem(sale: LocalSale) -> None:
    env = sale.env(FLASHSALE_ADMISSION_RATE="-5", FLASHSALE_PORT="99999", FLASHSALE_PRODUCT_CURRENCY="euro")
    del env["FLASHSALE_SALE_TOKEN_KEY"]
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
        "FLASHSALE_SALE_TOKEN_KEY",
    }, problems
    assert all(line.startswith("invalid settings: FLASHSALE_") for line in problems), problems
