"""`autoresponder review`: the reviewed training examples the console's review list wrote, for the weekly routine."""

from __future__ import annotations

import json

import typer

from bot.desk.reviewed import ReviewedExamples
from bot.settings import PROJECT_ROOT, Settings

review_app = typer.Typer(
    help="The reviewed training examples (console: Review; data/nlu/reviewed/).", no_args_is_help=True
)


@review_app.command("report")
def report() -> None:
    """Print the reviewed examples per intent, and the last `eval --before` accuracy before and after them."""
    settings = Settings()
    path = settings.review_file
    counts = ReviewedExamples(path, ()).counts()
    shown = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
    print(f"reviewed examples in {shown}: {sum(counts.values())}")
    width = max((len(name) for name in counts), default=0)
    for name, n in counts.items():
        print(f"  {name:<{width}}  {n}")
    metrics_file = settings.var_dir / "eval" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    before, dev = metrics.get("before") or {}, metrics.get("dev") or {}
    if before.get("dev") and dev:
        learnt = (metrics.get("reviewed") or {}).get("examples", "?")
        print(f"dev accuracy at the last `autoresponder eval --before` ({learnt} reviewed examples then):")
        print(f"  without them {before['dev']['accuracy']:.3f}  with them {dev['accuracy']:.3f}")
    else:
        print("next: `autoresponder train`, then `autoresponder eval --before` for the accuracy before and after")
