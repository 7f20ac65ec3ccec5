"""`flashsale token` and `--help`, in process: tokens in the order given and nothing else on stdout."""

from __future__ import annotations

from pathlib import Path

import pytest

from flashsale_sale import cli, tokens

KEY = "k" * 32


def test_token_prints_exactly_the_tokens_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["token", "--key", KEY, "--user", "b", "--user", "a", "--ttl", "7200"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert out.endswith("\n")
    assert len(lines) == 2
    assert [tokens.verify(KEY.encode(), line) for line in lines] == ["b", "a"]


def test_token_reads_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLASHSALE_USER_TOKEN_KEY", KEY)
    assert cli.main(["token", "--user", "alice"]) == 0
    assert tokens.verify(KEY.encode(), capsys.readouterr().out.strip()) == "alice"


def test_token_mints_thousands_from_a_users_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = [f"user-{i}" for i in range(5_000)]
    (tmp_path / "users").write_text("\n".join(users) + "\n")
    assert cli.main(["token", "--key", KEY, "--user", "first", "--users-file", str(tmp_path / "users")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5_001
    assert tokens.verify(KEY.encode(), lines[0]) == "first"
    assert tokens.verify(KEY.encode(), lines[-1]) == "user-4999"


@pytest.mark.parametrize(
    "argv", [["token", "--user", "a"], ["token", "--key", KEY], ["token", "--key", KEY, "--user", "bad user"]]
)
def test_token_without_key_or_users_or_with_a_bad_user_exits_2_and_prints_nothing(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FLASHSALE_USER_TOKEN_KEY", raising=False)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("flashsale token: ")


@pytest.mark.parametrize("command", [[], ["consumer"], ["gateway"], ["migrate"], ["token"]])
def test_help_needs_no_settings(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    assert exited.value.code == 0
    assert "usage: flashsale" in capsys.readouterr().out
