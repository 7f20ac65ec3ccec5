"""The platform team's journey, as docs/operator.md tells it: `make up`, apply a FlashSale with the
built kubectl, buy through `status.gateway.url` with tokens from `flashsale token`, find the orders
in PostgreSQL, `kubectl delete` it, `make down`."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from flashsale_dev.paths import REPO_ROOT
from flashsale_dev.waiting import wait_for

STOCK = 100  # examples/flashsale.yaml's
SHOPPERS = 120


def shell(command: str, env: dict[str, str], stdin: str | None = None) -> str:
    """One line of the journey, in bash, with `make up`'s exports in the environment."""
    done = subprocess.run(["bash", "-c", command], cwd=REPO_ROOT, env=env, input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def wait_ready(env: dict[str, str], status: Callable[[], dict[str, Any]]) -> None:
    """`kubectl wait --for=condition=Ready` returns once the gate is built and the gateways are Ready."""
    waited = shell("kubectl wait --for=condition=Ready fsale/summer-drop --timeout=240s", env)
    assert "condition met" in waited
    ready = next(c for c in status()["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "AllReady")


def test_make_up_apply_a_flashsale_buy_its_stock_and_delete_it() -> None:
    state_dir = Path(tempfile.gettempdir()) / f"flashsale-journey-{uuid.uuid4().hex[:8]}"
    base = {**os.environ, "FLASHSALE_STATE_DIR": str(state_dir)}
    try:
        exports = shell("make -s up", base)
        assert "export FLASHSALE_USER_TOKEN_KEY=" in exports
        assert "export FLASHSALE_PAYMENT_KEY=" in exports
        env = dict(base)
        for line in shell(f"{exports}\nenv -0", base, None).split("\0"):
            if "=" in line:
                key, value = line.split("=", 1)
                env[key] = value
        assert Path(shell("command -v kubectl", env).strip()).parent.name.startswith("k8s-")  # the built one

        shell(".venv/bin/flashsale-dev example --starts-in 20 | kubectl apply -f -", env)

        def status() -> dict[str, Any]:
            found: dict[str, Any] = json.loads(shell("kubectl get fsale summer-drop -o json", env))
            return dict(found.get("status") or {})

        wait_ready(env, status)  # before the start: the gate built, every gateway replica Ready
        live = wait_for(
            lambda: status() if status().get("phase") == "Live" else None, timeout=240, what="Live"
        )
        url = str(live["gateway"]["url"])
        sale = "{metadata[namespace]}/{metadata[name]}".format_map(
            json.loads(shell("kubectl get fsale summer-drop -o json", env))
        )
        users = "\n".join(f"journey-{i}" for i in range(SHOPPERS))
        tokens = shell(f".venv/bin/flashsale token --sale {sale} --users-file -", env, users).split()
        order_path = httpx.get(f"{url}/api/status", timeout=30).json()["orderPath"]
        replies = [
            httpx.post(f"{url}{order_path}", headers={"Authorization": f"Bearer {t}"}, timeout=30)
            for t in tokens
        ]
        answers = [reply.status_code for reply in replies]
        assert answers.count(202) == STOCK
        assert set(answers) == {202, 410}
        reservation = replies[answers.index(202)].json()["reservationId"]
        shopper_token = tokens[answers.index(202)]  # whose order it is

        wait_for(lambda: status().get("phase") == "SoldOut", timeout=120, what="SoldOut")
        table = shell("kubectl get fsale", env)
        assert table.split("\n")[1].split()[:4] == ["summer-drop", "SoldOut", str(STOCK), "0"]
        wide = shell("kubectl get fsale -o wide", env).split("\n")
        assert wide[0].split()[6:] == ["URL", "ORDERED", "PAID", "CONSUMERS", "LAG"]
        assert wide[1].split()[6] == url
        uid = json.loads(shell("kubectl get fsale summer-drop -o json", env))["metadata"]["uid"]

        def orders() -> int:
            with psycopg.connect(env["DATABASE_URL"]) as conn:
                row = conn.execute("SELECT count(*) FROM orders WHERE sale_id = %s", (uid,)).fetchone()
            return int(row[0]) if row else 0

        wait_for(lambda: orders() == STOCK, timeout=120, what="every reservation an order in PostgreSQL")
        # The shop's payment service pays it with the sale's payment credential; the shopper cannot.
        payer = shell(f".venv/bin/flashsale token --payment --sale {sale}", env).strip()
        pay = f"{url}/api/orders/{reservation}/pay"
        assert (
            httpx.post(pay, headers={"Authorization": f"Bearer {shopper_token}"}, timeout=30).status_code
            == 403
        )
        paid = httpx.post(pay, headers={"Authorization": f"Bearer {payer}"}, timeout=30)
        assert (paid.status_code, paid.json()["state"]) == (200, "paid")
        shell("kubectl delete fsale summer-drop --timeout=180s", env)
        assert orders() == STOCK
    finally:
        subprocess.run(["make", "-s", "down"], cwd=REPO_ROOT, env=base, capture_output=True, timeout=300,
                       check=False)  # fmt: skip
    assert not state_dir.exists()
