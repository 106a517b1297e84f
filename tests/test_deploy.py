"""The deployment files parse, run real hub commands, keep secrets out, and their
dashboards and autoscalers use only metrics the hub exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from hub.cli import main
from hub.context import Hub
from hub.observe.collect import DatabaseCollector
from hub.observe.metrics import render

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
_METRIC = re.compile(r"\bhub_[a-z0-9_]+")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported(hub: Hub) -> set[str]:
    """Every series name the hub's /metrics can show."""
    text, _ = render([DatabaseCollector(hub.engine)])
    names: set[str] = set()
    for line in text.decode().splitlines():
        if line.startswith("# TYPE hub_"):
            _, _, name, kind = line.split()
            names |= {name + suffix for suffix in _SUFFIXES.get(kind, ("",))}
            names.add(name)
    return names


def k8s_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return documents


def named(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


def assert_hub_command(args: list[str]) -> None:
    """`hub ARGS` would parse: each word a (sub)command, the rest valid options."""
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group) and rest and rest[0] in command.commands:
        command = command.commands[rest.pop(0)]
    assert not isinstance(command, click.Group) or not rest, args
    command.make_context(command.name or "hub", rest)


def test_kubernetes_manifests_describe_api_worker_service_config_and_autoscaling() -> None:
    for document in k8s_documents():
        assert {"apiVersion", "kind", "metadata"} <= set(document)
    api = named("Deployment", "hub-api")
    worker = named("Deployment", "hub-worker")
    named("Service", "hub-api")
    assert "routes.yaml" in named("ConfigMap", "hub-routes")["data"]
    for deployment in (api, worker):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"] + pod.get("initContainers", []):
            assert {"secretRef": {"name": "hub-secrets"}} in container["envFrom"]
            for variable in container.get("env", []):  # no secret written in clear
                assert not re.search(r"PASSWORD|SECRET|KEY|TOKEN", variable["name"])
            assert_hub_command(container["args"])
    for name in ("hub-api", "hub-worker"):
        hpa = named("HorizontalPodAutoscaler", name)["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 20)
        cpu = [m for m in hpa["metrics"] if m["type"] == "Resource"]
        assert cpu[0]["resource"]["target"]["averageUtilization"] == 60


def test_autoscaling_and_dashboard_use_exported_metrics_only(hub: Hub) -> None:
    names = exported(hub)
    external = [
        m["external"]["metric"]["name"]
        for m in named("HorizontalPodAutoscaler", "hub-worker")["spec"]["metrics"]
        if m["type"] == "External"
    ]
    assert external == ["hub_outbox_oldest_due_age_seconds"]
    assert set(external) <= names
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "lampid-hub.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in _METRIC.findall(expr)}
    assert used, "the dashboard shows nothing"
    assert used <= names, sorted(used - names)
    # every figure the issue asks for is on the dashboard
    for wanted in (
        "hub_rows_total",
        "hub_row_issues_total",
        "hub_pipeline_stage_seconds_bucket",
        "hub_http_requests_total",
        "hub_http_request_duration_seconds_bucket",
        "hub_outbox_messages",
        "hub_outbox_oldest_due_age_seconds",
        "hub_connector_calls_total",
        "hub_connector_call_duration_seconds_bucket",
        "hub_breaker_open",
        "hub_rate_limit_wait_seconds_total",
        "hub_connector_quota_left",
        "hub_job_runs_total",
    ):
        assert wanted in used, wanted


def test_compose_runs_the_whole_hub_with_real_commands() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {
        "postgres", "redis", "proxy", "api-1", "api-2", "worker-1", "worker-2",
        "scheduler", "dukcapil-sandbox", "siak-sandbox", "prometheus", "grafana",
    } <= set(services)  # fmt: skip
    for service in services.values():
        if service.get("image") == "lampid-hub:latest":
            assert_hub_command(service["command"])
    prometheus = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    assert targets == {"api-1:8000", "api-2:8000", "worker-1:9101", "worker-2:9101"}
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server api-1:8000" in nginx
    assert "server api-2:8000" in nginx


def test_the_image_runs_as_a_user_without_privileges() -> None:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert lines[[i for i, line in enumerate(lines) if line.startswith("FROM")][0]].endswith(
        "-slim"
    )
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}


@pytest.mark.parametrize("args", [["serve", "--no-such-flag"], ["nope"]])
def test_the_command_check_itself_can_fail(args: list[str]) -> None:
    with pytest.raises((click.UsageError, AssertionError)):
        assert_hub_command(args)
