"""The `flashsale` console script as a real process: tokens, settings errors, `--help`, `migrate`."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from flashsale_dev.pytest_plugin import PostgresSchema
from flashsale_dev.sale import FLASHSALE, inherited_environment
from flashsale_sale import db, tokens

KEY = "k" * 32  # the platform's user-token key
SALE = "shop/kettle"
SALE_KEY = tokens.sale_token_key(KEY.encode(), SALE).encode()


def clean_env(**extra: str) -> dict[str, str]:
    return inherited_environment() | extra


def flashsale(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLASHSALE), *args],
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_token_prints_only_the_tokens_in_the_order_given() -> None:
    done = flashsale(
        "token", "--sale", SALE, "--user", "a", "--user", "b", env=clean_env(FLASHSALE_USER_TOKEN_KEY=KEY)
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert done.stdout == "\n".join(lines) + "\n"
    assert [tokens.verify(SALE_KEY, line) for line in lines] == ["a", "b"]


def test_token_mints_5000_users_in_one_call(tmp_path: Path) -> None:
    users = [f"shopper-{i}" for i in range(5_000)]
    (tmp_path / "users").write_text("\n".join(users))
    done = flashsale("token", "--sale", SALE, "--key", KEY, "--users-file", str(tmp_path / "users"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5_000
    assert [tokens.verify(SALE_KEY, line) for line in lines] == users


def test_token_without_a_sale_exits_non_zero_naming_the_option() -> None:
    done = flashsale("token", "--user", "a", env=clean_env(FLASHSALE_USER_TOKEN_KEY=KEY))
    assert done.returncode != 0
    assert done.stdout == ""
    assert "--sale" in done.stderr


def test_consumer_help_works_without_any_setting() -> None:
    done = flashsale("consumer", "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: flashsale consumer" in done.stdout


def test_consumer_with_invalid_settings_exits_2_with_one_line_per_problem() -> None:
    env = clean_env(
        FLASHSALE_SALE_NAME="s",
        FLASHSALE_SALE_ID="bad id!",
        FLASHSALE_STOCK="-1",
        FLASHSALE_STARTS_AT="2026-01-01T00:00:00Z",
        FLASHSALE_ENDS_AT="2026-01-02T00:00:00Z",
        FLASHSALE_REDIS_URL="redis://127.0.0.1:1/0",
        FLASHSALE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        FLASHSALE_METRICS_PORT="99999",
    )
    done = flashsale("consumer", env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 4, lines
    for variable in ("SALE_ID", "STOCK", "DATABASE_URL", "METRICS_PORT"):
        assert sum(f"FLASHSALE_{variable}:" in line for line in lines) == 1, lines


def test_consumer_reads_its_secrets_from_the_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "FLASHSALE_DATABASE_URL").write_text("postgresql://from-a-file/db")
    done = flashsale("consumer", env=clean_env(FLASHSALE_SECRETS_DIR=str(tmp_path)))
    assert done.returncode == 2
    assert "FLASHSALE_SALE_ID:" in done.stderr
    assert "FLASHSALE_DATABASE_URL" not in done.stderr


def test_migrate_is_idempotent_and_safe_to_run_twice_at_once(pg_schema: PostgresSchema) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = list(pool.map(lambda _: flashsale("migrate", "--database-url", pg_schema.url), range(2)))
    assert [done.returncode for done in together] == [0, 0], [done.stderr for done in together]
    latest = len(db.MIGRATIONS)
    assert sorted("already current" in done.stdout for done in together) == [False, True]
    again = flashsale("migrate", env=clean_env(FLASHSALE_DATABASE_URL=pg_schema.url))
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"schema at version {latest} (already current)\n"
    with pg_schema.connect() as conn:
        assert db.schema_version(conn) == latest
        tables = {str(row[0]) for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )}  # fmt: skip
    assert {"sales", "stock_ledger", "orders", "flashsale_schema"} <= tables
