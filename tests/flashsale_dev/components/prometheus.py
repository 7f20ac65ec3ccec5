"""Prometheus (Debian): scrapes whatever targets the caller registers, every second.

Targets come from file-based service discovery: `register_target` writes one JSON file per job
and Prometheus picks it up without a restart. `register_pods` follows the pods' own
`prometheus.io/{scrape,port,path}` annotations, as a cluster's Prometheus with `kubernetes_sd_configs`
(role: pod) and the usual relabelling does: the port a manifest names is the port scraped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from flashsale_dev.components.base import Component
from flashsale_dev.paths import require_binary
from flashsale_dev.process import ManagedProcess

CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: file_sd
    file_sd_configs:
      - files: ["{targets}/*.json"]
        refresh_interval: 1s
"""


def annotated_target(annotations: Mapping[str, str] | None, pod_ip: str | None) -> tuple[str, str] | None:
    """(address, path) to scrape a pod at, from its annotations; None unless it asks to be scraped."""
    annotations = annotations or {}
    if (
        annotations.get("prometheus.io/scrape") != "true"
        or not pod_ip
        or "prometheus.io/port" not in annotations
    ):
        return None
    return f"{pod_ip}:{annotations['prometheus.io/port']}", annotations.get("prometheus.io/path", "/metrics")


class Prometheus(Component):
    name = "prometheus"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_dir(self) -> Path:
        return self.dir / "targets"

    def exports(self) -> dict[str, str]:
        return {"PROMETHEUS_URL": self.url}

    def register_target(self, job: str, address: str, labels: dict[str, str] | None = None) -> None:
        """Scrape `address` (host:port, /metrics) under the label job=`job`."""
        self._write_targets(job, [{"targets": [address], "labels": {"job": job, **(labels or {})}}])

    def _write_targets(self, job: str, groups: list[dict[str, Any]]) -> None:
        tmp = self.targets_dir / f".{job}.json.tmp"
        tmp.write_text(json.dumps(groups))
        os.replace(tmp, self.targets_dir / f"{job}.json")  # atomic: never a half-written file

    def register_pods(self, job: str, pods: Iterable[Any]) -> list[str]:
        """Scrape these pods (kubernetes client objects) where their annotations say; the addresses."""
        groups: list[dict[str, Any]] = []
        addresses: list[str] = []
        for pod in pods:
            target = annotated_target(pod.metadata.annotations, pod.status.pod_ip)
            if target is not None:
                labels = {"job": job, "pod": pod.metadata.name, "__metrics_path__": target[1]}
                groups.append({"targets": [target[0]], "labels": labels})
                addresses.append(target[0])
        self._write_targets(job, groups)
        return addresses

    def unregister_target(self, job: str) -> None:
        (self.targets_dir / f"{job}.json").unlink(missing_ok=True)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant PromQL query; the `result` list of the answer."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10).json()
        if answer.get("status") != "success":
            raise RuntimeError(f"PromQL {promql!r} failed: {answer}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def _prepare(self) -> None:
        self.targets_dir.mkdir(exist_ok=True)
        (self.dir / "prometheus.yml").write_text(CONFIG.format(targets=self.targets_dir))

    def _make_process(self) -> ManagedProcess:
        argv = [
            str(require_binary("/usr/bin/prometheus")),
            f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1d",
        ]
        return ManagedProcess(self.name, argv, self.log_path)

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
