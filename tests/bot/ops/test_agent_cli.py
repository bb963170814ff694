"""`autoresponder agent …` run as a process against a database of its own, the way an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.accounts.repository import AccountRepository
from bot.settings import PROJECT_ROOT


def run(var: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTORESPONDER_")}
    env["AUTORESPONDER_VAR_DIR"] = str(var)
    return subprocess.run(
        [sys.executable, "-m", "bot.ops.cli", "agent", *args],
        cwd=PROJECT_ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_accounts_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    made = run(tmp_path, "add", "小李", "--role", "supervisor")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    assert lines[0] == "account 小李 (supervisor) created"
    password = lines[1].removeprefix("password (shown once): ")
    assert len(password) == 20
    assert run(tmp_path, "add", "Lin", "--password-stdin", stdin="short\n").returncode == 1
    assert run(tmp_path, "add", "Lin", "--password-stdin", stdin="a long enough password\n").returncode == 0
    again = run(tmp_path, "add", "lin")
    assert again.returncode == 1 and "exists already" in again.stderr
    assert run(tmp_path, "role", "Lin", "admin").stdout.strip() == "account Lin is now admin"
    assert run(tmp_path, "role", "Lin", "boss").returncode == 1
    assert run(tmp_path, "disable", "小李").returncode == 0
    listed = run(tmp_path, "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["Lin", "admin", "active"], ["小李", "supervisor", "disabled"]]
    assert run(tmp_path, "enable", "小李").returncode == 0
    assert run(tmp_path, "unlock", "nobody").returncode == 1
    reset = run(tmp_path, "reset-password", "小李").stdout
    assert "password (shown once): " in reset and password not in reset

    token = run(tmp_path, "token", "create", "小李", "--name", "CRM sync", "--quiet").stdout.strip()
    assert token.startswith("art_")
    listed_tokens = run(tmp_path, "token", "list").stdout
    assert "CRM sync" in listed_tokens and token not in listed_tokens and "active" in listed_tokens
    with AccountRepository.from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}") as repo:
        found = repo.authenticate_token(token)
        assert found is not None and found[0].name == "小李"
        token_id = found[1].id
    assert run(tmp_path, "token", "revoke", str(token_id)).returncode == 0
    assert "revoked" in run(tmp_path, "token", "list", "小李").stdout
    with AccountRepository.from_url(f"sqlite:///{tmp_path / 'crm.sqlite3'}") as repo:
        assert repo.authenticate_token(token) is None
        audit = [(e.actor, e.via, e.action, e.target) for e in reversed(repo.audit_page())]
    assert audit == [
        ("cli", "cli", "account_created", "小李"),
        ("cli", "cli", "account_created", "Lin"),
        ("cli", "cli", "account_role_changed", "Lin"),
        ("cli", "cli", "account_disabled", "小李"),
        ("cli", "cli", "account_enabled", "小李"),
        ("cli", "cli", "password_reset", "小李"),
        ("cli", "cli", "token_created", "小李"),
        ("cli", "cli", "token_revoked", "小李"),
    ]
