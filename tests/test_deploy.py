"""The deployment files name only what exists: settings the app reads, routes it serves, CLI commands."""

from __future__ import annotations

import re
from typing import Any

import yaml

from bot.ops.cli import app as cli_app
from bot.settings import PROJECT_ROOT, Settings
from bot.web.app import create_app

DEPLOY = PROJECT_ROOT / "deploy"
SETTINGS = {f"AUTORESPONDER_{name.upper()}" for name in Settings.model_fields}
ENGINE_ROUTES = {"/webhooks/app/"}  # the engine's own app channel (ar_engine.channel)


def manifests() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "autoresponder.yaml").read_text()) if d]


def commands() -> set[str]:
    return {c.name or (c.callback.__name__ if c.callback else "") for c in cli_app.registered_commands}


def test_every_setting_named_in_deployment_files_exists() -> None:
    named = set()
    for path in [*DEPLOY.rglob("*.example"), *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.service")]:
        named |= set(re.findall(r"AUTORESPONDER_[A-Z0-9_]+", path.read_text()))
    assert named, "no settings found"
    assert named - SETTINGS == set()


def test_kubernetes_probes_use_the_health_routes_and_the_commands_exist() -> None:
    app = create_app(Settings(_env_file=None), engine_token="x")  # type: ignore[call-arg]
    app_routes = set(app.openapi()["paths"])
    kinds = [d["kind"] for d in manifests()]
    assert kinds.count("Deployment") == 2 and "Service" in kinds and "Ingress" in kinds
    for deployment in (d for d in manifests() if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["args"][-1] in commands()
            routes = app_routes if container["args"][-1] == "serve-app" else ENGINE_ROUTES
            for probe in ("readinessProbe", "livenessProbe"):
                assert container[probe]["httpGet"]["path"] in routes, (container["name"], probe)
    app_deployment = next(d for d in manifests() if d["metadata"]["name"] == "autoresponder-app")
    probes = app_deployment["spec"]["template"]["spec"]["containers"][0]
    assert probes["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_systemd_units_run_cli_commands() -> None:
    for unit in (DEPLOY / "systemd").glob("*.service"):
        start = re.search(r"^ExecStart=\S*autoresponder (\S+)", unit.read_text(), re.M)
        assert start and start.group(1) in commands(), unit.name
