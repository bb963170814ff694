"""The `autoresponder` command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from bot.locale import detect_locale
from bot.ops.accounts import agent_app, announce_first_admin
from bot.ops.review import review_app
from bot.ops.stack import Stack, StackError, engine_env, model_path, train
from bot.settings import PROJECT_ROOT, Settings

app = typer.Typer(help="Omnichannel customer-service auto-responder.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
app.add_typer(review_app, name="review")


def rest_token_source(settings: Settings) -> str:
    """Where the REST token is, never the token itself (banners end up in logs and screenshots)."""
    settings.secret("rest_token")  # created now if it does not exist yet
    if settings.rest_token:
        return "AUTORESPONDER_REST_TOKEN"
    return f"in {settings.var_dir / 'secrets' / 'rest_token'} (readable by you only)"


@app.command()
def up() -> None:
    """Start Redis (unless AUTORESPONDER_REDIS_URL is set), the engine and the app; Ctrl-C stops them."""
    # Everything the stack writes (the CRM database, Redis's AOF, logs, secrets) holds customer data or
    # keys: readable by this user only, in this process and every child.
    os.umask(0o077)
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
        admin = f"{announce_first_admin(stack.first_admin, settings, sys.stdout)}\n" if stack.first_admin else ""
        print(
            "\nautoresponder is ready\n"
            f"  web chat demo : {base}/\n"
            f"  API docs      : {base}/docs\n"
            f"  REST channel  : POST {base}/channels/rest/messages\n"
            f"  REST token    : {rest_token_source(settings)}\n"
            f"  agent console : {base}/console  (accounts: `autoresponder agent --help`)\n"
            f"{admin}"
            f"  Redis         : {stack.redis_url}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        while True:
            # A process that dies is restarted (with a growing delay); the others keep running.
            for event in stack.supervise():
                print(event, file=sys.stderr, flush=True)
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


def _service_stack() -> Stack:
    """A stack for running one process under a service manager: Redis and the engine token must be given."""
    settings = Settings()
    if not settings.redis_url or not settings.engine_token:
        print(
            "error: set AUTORESPONDER_REDIS_URL and AUTORESPONDER_ENGINE_TOKEN (the same for the app and the engine)",
            file=sys.stderr,
        )
        raise typer.Exit(2)
    os.umask(0o077)
    stack = Stack(settings)
    stack.redis_url = settings.redis_url
    stack.engine_token = settings.engine_token
    return stack


@app.command("serve-engine")
def serve_engine() -> None:
    """Run the engine in the foreground (for systemd or Kubernetes): config written, then `rasa run`."""
    stack = _service_stack()
    model = model_path(stack.settings)
    if not model.exists():
        print(f"error: no model for the current data ({model.name}); run `autoresponder train`", file=sys.stderr)
        raise typer.Exit(1)
    endpoints, credentials = stack.write_engine_config(stack.redis_url)
    cmd, env = stack.engine_command(model, endpoints, credentials)
    os.execve(cmd[0], cmd, env)  # the service manager supervises the engine itself, not a wrapper


@app.command("serve-app")
def serve_app() -> None:
    """Run the app in the foreground (for systemd or Kubernetes): schema migrated, then uvicorn."""
    stack = _service_stack()
    stack.prepare_crm()
    cmd, env = stack.app_command()
    os.execve(cmd[0], cmd, env)


@app.command("train")
def train_cmd(force: Annotated[bool, typer.Option(help="Train even when the model is up to date.")] = False) -> None:
    """Train the model when it is missing or older than its data."""
    try:
        train(Settings(), force=force)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc


@app.command()
def parse(
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to parse; none: one per line on stdin.")] = None,
) -> None:
    """Print one JSON line per text: intent, confidence, entities, sentiment score and detected locale."""
    settings = Settings()
    model = model_path(settings)
    if not model.exists():
        print(f"error: no model for the current data ({model.name}); run `autoresponder train`", file=sys.stderr)
        raise typer.Exit(1)
    lines = texts if texts else [line.rstrip("\n") for line in sys.stdin]
    lines = [line.replace("\n", " ") for line in lines if line.strip()]
    python = settings.engine_dir / ".venv" / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "ar_engine.parse_cli", "--model", str(model)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=engine_env(settings, ""),
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        raise typer.Exit(proc.returncode)
    # Rasa and TensorFlow may print to stdout too: the results are the lines that are JSON objects.
    results = [line for line in proc.stdout.splitlines() if line.startswith('{"text"')]
    for text, line in zip(lines, results, strict=False):
        result = json.loads(line)
        result["locale"] = detect_locale(text)
        print(json.dumps(result, ensure_ascii=False))


@app.command("eval")
def eval_cmd(
    before: Annotated[
        bool, typer.Option("--before", help="Also score a model trained without data/nlu/reviewed (one more training).")
    ] = False,
) -> None:
    """Evaluate the current model (training it if stale); write var/eval/report.md; fail under target."""
    from bot.ops.evaluation import (
        report,
        reviewed_summary,
        run_before,
        run_conversation_tests,
        run_nlu_and_sentiment,
        targets,
    )

    settings = Settings()
    try:
        model = train(settings)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    out = settings.var_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    metrics = run_nlu_and_sentiment(settings, model, out)
    metrics["conversation_tests"] = run_conversation_tests(settings, model, out)
    metrics["reviewed"] = reviewed_summary(settings)
    if before:
        try:
            metrics["before"] = run_before(settings, out)
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(1) from exc
    found = targets(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2))
    (out / "report.md").write_text(report(metrics, found))
    width = max(len(t.name) for t in found)
    for t in found:
        print(f"  {t.name:<{width}}  {t.value:6.3f}  ({t.bound})  {t.verdict}")
    reviewed, baseline = metrics["reviewed"], metrics.get("before")
    if baseline and baseline.get("dev") and metrics.get("dev"):
        print(f"  dev accuracy without the {reviewed['examples']} reviewed examples: {baseline['dev']['accuracy']:.3f}")
        print(f"  dev accuracy with them                          : {metrics['dev']['accuracy']:.3f}")
    print(f"report: {out / 'report.md'}")
    if not all(t.met for t in found if t.gate):
        raise typer.Exit(1)


@app.command("compare-pipelines")
def compare_pipelines(folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 3) -> None:
    """Train config.yml's NLU pipeline and its DIET variant; held-out, dev and cross-validated accuracy."""
    settings = Settings()
    out = settings.var_dir / "compare"
    python = settings.engine_dir / ".venv" / "bin" / "python"
    cmd = [str(python), "-m", "ar_engine.compare", "--config", "config.yml", "--nlu", "data/nlu"]
    cmd += ["--test", "tests/nlu/test_nlu.yml", "--dev", "tests/nlu/dev/customers.yml"]
    cmd += ["--out", str(out), "--folds", str(folds)]
    raise typer.Exit(subprocess.run(cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), check=False).returncode)


@app.command("bench-nlu")
def bench_nlu(
    dataset: Annotated[str, typer.Argument(help="banking77, clinc150 or smp2017")],
    data: Annotated[Path, typer.Option(help="The data set's folder, e.g. ../shared/data/banking77")],
) -> None:
    """Train the project's pipeline on a public intent set and report its test accuracy (not run in CI)."""
    settings = Settings()
    if dataset not in ("banking77", "clinc150", "smp2017"):
        print("error: dataset must be banking77, clinc150 or smp2017", file=sys.stderr)
        raise typer.Exit(2)
    if not data.exists():
        print(f"error: {data} not found (the data sets live in ../shared/data)", file=sys.stderr)
        raise typer.Exit(2)
    out = settings.var_dir / "bench-nlu" / dataset
    python = settings.engine_dir / ".venv" / "bin" / "python"
    cmd = [str(python), "-m", "ar_engine.bench_nlu", dataset, "--data", str(data.resolve())]
    cmd += ["--config", str(PROJECT_ROOT / "config.yml"), "--out", str(out)]
    raise typer.Exit(subprocess.run(cmd, cwd=PROJECT_ROOT, env=engine_env(settings, ""), check=False).returncode)


@app.command("identity-hash")
def identity_hash_cmd(customer_id: Annotated[str, typer.Argument(help="The logged-in customer's id.")]) -> None:
    """Print the hash a shop's backend puts beside a customer's id for the web chat (for trying it out)."""
    from connectors.webchat.identity import identity_hash

    print(identity_hash(Settings().secret("identity_secret"), customer_id))


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
