"""The `autoresponder` command line."""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Annotated

import httpx
import typer

from bot.settings import Settings
from bot.stack import Stack, StackError, model_path, train

app = typer.Typer(help="Omnichannel customer-service auto-responder.", no_args_is_help=True)


@app.command()
def up() -> None:
    """Start Redis (unless AUTORESPONDER_REDIS_URL is set), the engine and the app; Ctrl-C stops them."""
    settings = Settings()
    stack = Stack(settings)

    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background ignores SIGINT otherwise.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        stack.up()
        base = settings.base_url
        print(
            "\nautoresponder is ready\n"
            f"  web chat demo : {base}/\n"
            f"  API docs      : {base}/docs\n"
            f"  REST channel  : POST {base}/channels/rest/messages\n"
            f"  REST token    : {settings.secret('rest_token')}\n"
            f"  Redis         : {stack.redis_url}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while True:
            dead = stack.check()
            if dead:
                print(f"{dead} exited unexpectedly; stopping the stack", file=sys.stderr)
                raise typer.Exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean stop short
        print("stopping…", flush=True)
        stack.stop()
        print("stopped", flush=True)


@app.command("train")
def train_cmd(force: Annotated[bool, typer.Option(help="Train even when the model is up to date.")] = False) -> None:
    """Train the model when it is missing or older than its data."""
    try:
        train(Settings(), force=force)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc


@app.command()
def status() -> None:
    """Show whether the app, Redis and the engine answer, and which model is current."""
    settings = Settings()
    model = model_path(settings)
    report: dict[str, object] = {"app": settings.base_url, "model": model.name, "model_trained": model.exists()}
    try:
        resp = httpx.get(f"http://127.0.0.1:{settings.http_port}/healthz", timeout=5)
        report.update(resp.json())
        report["ready"] = resp.status_code == 200
    except httpx.HTTPError as exc:
        report["ready"] = False
        report["error"] = f"app not reachable on port {settings.http_port}: {exc.__class__.__name__}"
    print(json.dumps(report, indent=2))
    if not report["ready"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
