"""`python -m ar_engine.serve ARGS…`: `rasa run ARGS…` with the API token from the environment.

Rasa takes its HTTP API token only as `--auth-token` on the command line, where every user of the
machine can read it (`ps`). The launcher passes it in AUTORESPONDER_ENGINE_TOKEN instead (a process's
environment is readable by its owner only), and this module hands it to Rasa's argument parser inside
the process, so it never appears in the process list. It also installs the engine's patches to Rasa
(`ar_engine.validation`, `ar_engine.callbacks`, `ar_engine.turns`, `ar_engine.keepalive`,
and `ar_engine.event_types`) before Rasa starts.

TensorFlow's converter module imports JAX when it is installed (TensorFlow 2.12 depends on it) to offer
a conversion the engine never uses: that is a second of every start. The engine blocks that import
(`sys.modules["jax"] = None`, Python's way to make an import fail), and TensorFlow goes on without it.
"""

from __future__ import annotations

import os
import sys

TOKEN_ENV = "AUTORESPONDER_ENGINE_TOKEN"
# Set to 1 to run Rasa without the engine's patches and warm-up (the benchmark's "before" column).
STOCK_ENV = "AUTORESPONDER_ENGINE_STOCK_RASA"


def argv(args: list[str], token: str) -> list[str]:
    """The argument vector Rasa's CLI parses: `rasa run`, the arguments, the token."""
    if any(a == "--auth-token" or a.startswith("--auth-token=") or a == "-t" for a in args):
        raise SystemExit("pass the engine token in AUTORESPONDER_ENGINE_TOKEN, not on the command line")
    # One argument with "=": a token starting with "-" would otherwise be read as an option.
    return ["rasa", "run", *args, f"--auth-token={token}"]


def main() -> None:
    """Run the engine."""
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"{TOKEN_ENV} is not set: the engine's HTTP API must not run unprotected")
    sys.argv = argv(sys.argv[1:], token)
    from ar_engine import turns

    turns.install()  # a correctness fix, also in stock mode: a turn whose endpoints failed is not saved
    if os.environ.get(STOCK_ENV) != "1":
        sys.modules.setdefault("jax", None)  # type: ignore[arg-type]  # see the module's docstring
        from ar_engine import callbacks, event_types, keepalive, validation

        validation.install()  # before Rasa validates its first action or NLG response
        callbacks.install()  # NLG requests carry the state and the latest message, not every event
        keepalive.install()  # one kept-alive session per endpoint, not a new connection per request
        event_types.install()  # event classes found by name once, not by a subclass walk per event
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
