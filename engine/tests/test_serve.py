"""ar_engine.serve hands Rasa the API token from the environment, whatever characters it has."""

from __future__ import annotations

import argparse

import pytest

from ar_engine.serve import argv


def test_a_token_starting_with_a_dash_reaches_rasa_as_the_token() -> None:
    built = argv(["--model", "m.tar.gz", "--interface", "127.0.0.1"], "-Rk3v_dash-first")
    assert built[:2] == ["rasa", "run"]
    # `rasa run` reads its options with argparse: parse them the same way.
    parser = argparse.ArgumentParser()
    parser.add_argument("-t", "--auth-token")
    parser.add_argument("--interface")
    options, _ = parser.parse_known_args(built[2:])
    assert options.auth_token == "-Rk3v_dash-first"
    assert options.interface == "127.0.0.1"


def test_a_token_on_the_command_line_is_refused() -> None:
    with pytest.raises(SystemExit, match="AUTORESPONDER_ENGINE_TOKEN"):
        argv(["--auth-token=abc"], "x")
