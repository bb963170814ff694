"""Model freshness and the engine configuration the launcher writes."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest
import yaml

from bot.ops import stack as stack_module
from bot.ops.stack import MODEL_INPUTS, Stack, data_without_reviewed, engine_env, model_fingerprint, train
from bot.settings import PROJECT_ROOT, Settings


def _copy_inputs(dest: Path) -> None:
    for name in MODEL_INPUTS:
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dest / name)


def test_fingerprint_follows_content_not_mtime(tmp_path: Path) -> None:
    _copy_inputs(tmp_path)
    before = model_fingerprint(tmp_path)
    (tmp_path / "domain.yml").touch()
    assert model_fingerprint(tmp_path) == before
    nlu = next((tmp_path / "data" / "nlu").glob("*.yml"))
    nlu.write_text(nlu.read_text() + "\n")
    assert model_fingerprint(tmp_path) != before


def test_fingerprint_ignores_modules_that_only_serve_the_model(tmp_path: Path) -> None:
    _copy_inputs(tmp_path)
    before = model_fingerprint(tmp_path)
    serve = tmp_path / "engine" / "ar_engine" / "serve.py"
    serve.write_text(serve.read_text() + "\n")
    assert model_fingerprint(tmp_path) == before
    featurizer = tmp_path / "engine" / "ar_engine" / "use_featurizer.py"
    featurizer.write_text(featurizer.read_text() + "\n")
    assert model_fingerprint(tmp_path) != before


def test_fingerprint_counts_reviewed_examples_not_the_folders_readme(tmp_path: Path) -> None:
    _copy_inputs(tmp_path)
    reviewed = tmp_path / "data" / "nlu" / "reviewed"
    assert (reviewed / "README.md").exists()  # the folder exists in a fresh clone
    before = model_fingerprint(tmp_path)
    baseline = model_fingerprint(tmp_path, reviewed=False)
    (reviewed / "README.md").write_text("edited\n")
    (reviewed / ".reviewed.yml.lock").write_text("")
    assert model_fingerprint(tmp_path) == before
    (reviewed / "reviewed.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 哈喽\n')
    assert model_fingerprint(tmp_path) != before
    # The baseline (the "before" of `autoresponder eval --before`) is the model without them.
    assert model_fingerprint(tmp_path, reviewed=False) == baseline


def test_the_baseline_data_is_the_data_without_reviewed_examples(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    _copy_inputs(tmp_path / "root")
    reviewed = tmp_path / "root" / "data" / "nlu" / "reviewed" / "reviewed.yml"
    reviewed.write_text("nlu: []\n")
    copy = data_without_reviewed(tmp_path / "data", tmp_path / "root")
    names = {p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()}
    assert "rules.yml" in names and "nlu/order_status.yml" in names
    assert not any(n.startswith("nlu/reviewed/") for n in names)


def test_engine_config_points_at_this_stack(tmp_path: Path) -> None:
    settings = Settings(http_port=18123, var_dir=tmp_path)
    stack = Stack(settings, engine_token="tok-123")
    endpoints, credentials = stack.write_engine_config("redis://:pw@127.0.0.1:6390/2")
    ep = yaml.safe_load(endpoints.read_text())
    assert ep["action_endpoint"] == {"url": "http://127.0.0.1:18123/webhooks/actions", "token": "tok-123"}
    assert ep["nlg"]["url"] == "http://127.0.0.1:18123/webhooks/nlg"
    assert ep["tracker_store"]["type"] == "ar_engine.tracker_store.AppendOnlyRedisTrackerStore"
    assert ep["lock_store"]["type"] == "ar_engine.lock_store.AsyncRedisLockStore"
    for store in ("tracker_store", "lock_store"):
        assert (ep[store]["url"], ep[store]["port"], ep[store]["db"], ep[store]["password"]) == (
            "127.0.0.1",
            6390,
            2,
            "pw",
        )
    # Rasa takes only an alphanumeric prefix (else it silently falls back to its own); trackers expire.
    assert ep["tracker_store"]["key_prefix"].isalnum() and ep["lock_store"]["key_prefix"].isalnum()
    assert ep["tracker_store"]["record_exp"] == 30 * 86400
    assert ep["tracker_store"]["max_events"] == 80
    assert yaml.safe_load(credentials.read_text()) == {"ar_engine.channel.AppInput": {"token": "tok-123"}}
    assert endpoints.stat().st_mode & 0o077 == 0  # tokens are not world-readable
    assert settings.resolved_engine_port == 18124


def test_with_sentinels_both_engine_stores_find_the_primary_through_them(tmp_path: Path) -> None:
    settings = Settings(
        http_port=18127, var_dir=tmp_path, redis_sentinels="10.0.0.5:26379,[::1]:26380", redis_sentinel_service="shop"
    )
    endpoints, _ = Stack(settings, engine_token="t").write_engine_config("redis://:pw@10.0.0.9:6379/0")
    ep = yaml.safe_load(endpoints.read_text())
    assert ep["lock_store"]["type"] == "ar_engine.lock_store.AsyncRedisLockStore"
    for store in ("tracker_store", "lock_store"):
        assert ep[store]["sentinels"] == [["10.0.0.5", 26379], ["::1", 26380]]
        assert ep[store]["sentinel_service"] == "shop"
        assert ep[store]["password"] == "pw"


def test_the_engine_token_is_given_in_the_environment_not_on_the_command_line(tmp_path: Path) -> None:
    settings = Settings(http_port=18125, var_dir=tmp_path)
    stack = Stack(settings, engine_token="-Rk3v_dash-first")
    spawned: list[tuple[list[str], dict[str, str]]] = []
    stack._spawn = lambda name, cmd, env, log=None: spawned.append((cmd, env))  # type: ignore[method-assign, assignment, return-value]  # records the command instead of starting it
    stack.start_engine(tmp_path / "model.tar.gz", tmp_path / "endpoints.yml", tmp_path / "credentials.yml")
    [(cmd, env)] = spawned
    assert not any("Rk3v" in part for part in cmd)  # `ps` shows the command line to every user
    assert cmd[1:3] == ["-m", "ar_engine.serve"] and "--interface" in cmd
    assert env["AUTORESPONDER_ENGINE_TOKEN"] == "-Rk3v_dash-first"


def test_a_process_that_dies_is_restarted_with_a_growing_delay_and_the_others_keep_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import time

    from bot.ops import stack as stack_module

    monkeypatch.setattr(stack_module, "RESTART_DELAYS", (0.2, 0.4))
    stack = Stack(Settings(http_port=18126, var_dir=tmp_path))
    env = dict(os.environ)
    stack._spawn("steady", [sys.executable, "-c", "import time; time.sleep(60)"], env)
    stack._spawn("flaky", [sys.executable, "-c", "import sys; sys.exit(3)"], env)
    try:
        events: list[str] = []
        deadline = time.monotonic() + 20
        while sum("flaky restarted" in e for e in events) < 2 and time.monotonic() < deadline:
            events += stack.supervise()
            time.sleep(0.05)
        flaky = [e for e in events if e.startswith("flaky")]
        assert flaky[:4] == [
            "flaky exited (code 3); restarting it in 0 s",
            "flaky restarted (restart 1)",
            "flaky exited (code 3); restarting it in 0 s",
            "flaky restarted (restart 2)",
        ]
        assert not any("steady" in e for e in events)  # the others keep running
        assert [name for name, _ in stack.procs] == ["steady", "flaky"]
    finally:
        stack.stop()


def test_engine_workers_reach_rasa_as_sanic_workers() -> None:
    assert engine_env(Settings(_env_file=None), "t")["SANIC_WORKERS"] == "1"  # type: ignore[call-arg]
    assert engine_env(Settings(_env_file=None, engine_workers=2), "t")["SANIC_WORKERS"] == "2"  # type: ignore[call-arg]


def test_without_reviewed_examples_the_baseline_is_the_model_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack_module, "model_fingerprint", lambda root=PROJECT_ROOT, *, reviewed=True: "f00d")
    model = tmp_path / "autoresponder-f00d.tar.gz"
    model.write_bytes(b"")  # trained already: nothing to train for the baseline either
    assert train(Settings(_env_file=None, model_dir=tmp_path), baseline=True) == model  # type: ignore[call-arg]


def test_web_chat_sockets_are_not_compressed_unless_asked(tmp_path: Path) -> None:
    cmd, _ = Stack(Settings(_env_file=None, var_dir=tmp_path), engine_token="t").app_command()  # type: ignore[call-arg]
    assert cmd[cmd.index("--ws-per-message-deflate") + 1] == "false"  # zlib's buffers: ~40 KB a socket
    on = Settings(_env_file=None, var_dir=tmp_path, webchat_compression=True)  # type: ignore[call-arg]
    cmd, _ = Stack(on, engine_token="t").app_command()
    assert cmd[cmd.index("--ws-per-message-deflate") + 1] == "true"


def test_free_ports_lie_below_the_ephemeral_range_and_are_never_handed_out_twice() -> None:
    """A port bound seconds later must not be one an outgoing connection can take as its source port."""
    low, _ = stack_module.ephemeral_range()
    ports = [stack_module.free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(stack_module._LOWEST_PORT <= port < low for port in ports)


def test_a_port_something_listens_on_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = stack_module.free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        stack_module._HANDED_OUT.discard(taken)
        # Only two candidates: the taken port and the one after it.
        monkeypatch.setattr(stack_module, "_LOWEST_PORT", taken)
        monkeypatch.setattr(stack_module, "ephemeral_range", lambda: (taken + 2, 65000))
        stack_module._HANDED_OUT.discard(taken + 1)
        assert stack_module.free_port() == taken + 1
        with pytest.raises(stack_module.StackError):
            stack_module.free_port()


def test_the_ephemeral_range_is_read_from_the_kernel_or_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "ip_local_port_range"
    conf.write_text("40000\t50000\n")
    assert stack_module.ephemeral_range(conf) == (40000, 50000)
    conf.write_text("garbage")
    assert stack_module.ephemeral_range(conf) == (32768, 60999)
    assert stack_module.ephemeral_range(tmp_path / "missing") == (32768, 60999)
