"""The first admin account: made once at the first start, its password shown once and kept out of logs."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from bot.accounts.repository import AccountRepository
from bot.ops.accounts import FIRST_ADMIN_FILE, announce_first_admin, ensure_first_admin
from bot.settings import Settings
from tests.conftest import RunningStack


class Terminal(io.StringIO):
    """Output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_first_start_makes_one_admin_and_only_once(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)  # type: ignore[call-arg]
    first = ensure_first_admin(settings)
    assert first is not None and first.name == "admin" and len(first.password) == 20
    assert ensure_first_admin(settings) is None  # never again
    with AccountRepository.from_url(settings.resolved_crm_url) as repo:
        check = repo.check_password("admin", first.password, lock_after=5, lock_seconds=60)
        assert check.outcome == "ok" and check.account is not None and check.account.role == "admin"
        assert [e.detail for e in repo.audit_page()] == ["first admin, created at the first start"]

    # On a terminal the banner shows the password; anywhere else only where to find it.
    assert first.password in announce_first_admin(first, settings, Terminal())
    line = announce_first_admin(first, settings, io.StringIO())
    assert first.password not in line
    path = tmp_path / "secrets" / FIRST_ADMIN_FILE
    assert str(path) in line
    assert path.read_text().strip() == first.password
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.mark.stack
def test_no_password_token_or_session_reaches_the_stacks_output(stack: RunningStack) -> None:
    signed = stack.call("POST", "/auth/sign-in", json={"name": "admin", "password": stack.admin.password})
    assert signed.status_code == 200
    sid = signed.cookies["ar_agent_session"]
    stack.call("POST", "/auth/sign-in", json={"name": "admin", "password": "a wrong password"})
    secrets_dir = stack.var_dir / "secrets"
    logs = [stack.log, *stack.var_dir.glob("run/*/engine.log"), *stack.var_dir.glob("redis/*/redis.log")]
    text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
    assert "first admin   : admin, password in" in text
    for secret in (stack.admin.password, stack.admin.token, sid, "a wrong password"):
        assert secret not in text
    assert not (secrets_dir / "agent_token").exists()
    for path in secrets_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
