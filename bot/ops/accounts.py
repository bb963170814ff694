"""`autoresponder agent …`: agent accounts and API tokens from the command line, and the first admin.

The commands work on the database of AUTORESPONDER_CRM_URL (the CRM's; `var/crm.sqlite3` by default),
whether or not the stack runs. Each change is in the audit log as done by "cli". A running app notices
at once: sessions of an account changed here end at its next request, revoked tokens stop working.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, TextIO

import typer

from bot.accounts.passwords import check_strength, generate_password
from bot.accounts.records import CLI, AccountError, Role, parse_role
from bot.accounts.repository import AccountRepository
from bot.settings import Settings, write_secret

FIRST_ADMIN = "admin"
FIRST_ADMIN_FILE = "first_admin_password"

agent_app = typer.Typer(help="Agent accounts: add, list, disable, enable, unlock, role, reset-password; API tokens.")
token_app = typer.Typer(help="API tokens acting as an account: create (shown once), list, revoke.")
agent_app.add_typer(token_app, name="token")


@contextmanager
def _repository() -> Iterator[AccountRepository]:
    settings = Settings()
    repo = AccountRepository.from_url(settings.resolved_crm_url)
    try:
        repo.create_schema()
        yield repo
    except AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    finally:
        repo.close()


def _audit(repo: AccountRepository, action: str, target: str, detail: str = "") -> None:
    repo.audit(action, actor=CLI.name, actor_id=None, role=str(CLI.role), via=CLI.via, target=target, detail=detail)


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated): read from stdin, or a new random one."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
        try:
            check_strength(password)
        except AccountError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(1) from exc
        return password, False
    return generate_password(), True


PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of stdin instead of generating one."),
]


@agent_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The agent's name, shown to customers and colleagues.")],
    role: Annotated[str, typer.Option(help="agent, supervisor or admin.")] = "agent",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create an account; a generated password is printed this once."""
    password, generated = _password(password_stdin)
    with _repository() as repo:
        account = repo.create(name, parse_role(role), password)
        _audit(repo, "account_created", account.name, f"role {account.role}")
    print(f"account {account.name} ({account.role}) created")
    if generated:
        print(f"password (shown once): {password}")


@agent_app.command("list")
def list_accounts() -> None:
    """Every account: role, state, last sign-in."""
    with _repository() as repo:
        accounts = repo.all()
        now = repo.clock()
    for a in accounts:
        state = "disabled" if a.disabled else "locked" if a.locked(now) else "active"
        last = a.last_signin_at.isoformat(timespec="seconds") if a.last_signin_at else "never"
        print(f"{a.name}\t{a.role}\t{state}\tlast sign-in {last}")


@agent_app.command("disable")
def disable(name: str) -> None:
    """Disable an account: no sign-in, its sessions end, its tokens stop working."""
    with _repository() as repo:
        account = repo.set_disabled(name, True)
        _audit(repo, "account_disabled", account.name)
    print(f"account {account.name} disabled")


@agent_app.command("enable")
def enable(name: str) -> None:
    """Enable a disabled account."""
    with _repository() as repo:
        account = repo.set_disabled(name, False)
        _audit(repo, "account_enabled", account.name)
    print(f"account {account.name} enabled")


@agent_app.command("unlock")
def unlock(name: str) -> None:
    """Lift the lock after repeated wrong passwords."""
    with _repository() as repo:
        account = repo.unlock(name)
        _audit(repo, "account_unlocked", account.name)
    print(f"account {account.name} unlocked")


@agent_app.command("role")
def set_role(name: str, role: Annotated[str, typer.Argument(help="agent, supervisor or admin.")]) -> None:
    """Change an account's role; its sessions end."""
    with _repository() as repo:
        account = repo.set_role(name, parse_role(role))
        _audit(repo, "account_role_changed", account.name, f"role {account.role}")
    print(f"account {account.name} is now {account.role}")


@agent_app.command("reset-password")
def reset_password(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password (generated and printed once, or read from stdin); clears a lock; sessions end."""
    password, generated = _password(password_stdin)
    with _repository() as repo:
        account = repo.set_password(name, password)
        _audit(repo, "password_reset", account.name)
    print(f"password of {account.name} replaced")
    if generated:
        print(f"password (shown once): {password}")


@token_app.command("create")
def token_create(
    account: Annotated[str, typer.Argument(help="The account the token acts as.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'CRM sync'.")] = "integration",
    quiet: Annotated[bool, typer.Option(help="Print the token alone (for scripts).")] = False,
) -> None:
    """Create an API token; it is printed this once and stored only as a hash."""
    with _repository() as repo:
        new = repo.create_token(account, name)
        _audit(repo, "token_created", new.info.account, f"token {new.info.id} {new.info.name}")
    if quiet:
        print(new.secret)
    else:
        print(f"token {new.info.id} ({new.info.name}) for {new.info.account}, shown once:\n{new.secret}")


@token_app.command("list")
def token_list(account: Annotated[str | None, typer.Argument(help="Only this account's.")] = None) -> None:
    """API tokens (never the secret): id, account, name, prefix, last use, revoked."""
    with _repository() as repo:
        tokens = repo.tokens(account)
    for t in tokens:
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
        state = f"revoked {t.revoked_at.isoformat(timespec='seconds')}" if t.revoked_at else "active"
        print(f"{t.id}\t{t.account}\t{t.name}\t{t.prefix}…\tlast used {used}\t{state}")


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke an API token; it stops working at once."""
    with _repository() as repo:
        info = repo.revoke_token(token_id)
        _audit(repo, "token_revoked", info.account, f"token {info.id} {info.name}")
    print(f"token {info.id} ({info.name}) of {info.account} revoked")


@dataclass(frozen=True)
class FirstAdmin:
    """The admin account made on the first start, with its generated password."""

    name: str
    password: str


def ensure_first_admin(settings: Settings) -> FirstAdmin | None:
    """On the very first start (no account at all), create the admin account; its password is returned once."""
    with AccountRepository.from_url(settings.resolved_crm_url) as repo:
        repo.create_schema()
        if repo.count():
            return None
        password = generate_password()
        try:
            account = repo.create(FIRST_ADMIN, Role.ADMIN, password)
        except AccountError:
            return None  # another replica made it first
        _audit(repo, "account_created", account.name, "first admin, created at the first start")
        return FirstAdmin(account.name, password)


def announce_first_admin(first: FirstAdmin, settings: Settings, out: TextIO) -> str:
    """The banner line for the first admin: the password itself on a terminal only.

    Output that is not a terminal may be a log file; there the password goes to a file of mode 600
    under var/secrets/ instead, and the line says where.
    """
    if out.isatty():
        return f"  first admin   : {first.name} / {first.password}  (shown this once; sign in and keep it safe)"
    path = settings.var_dir / "secrets" / FIRST_ADMIN_FILE
    write_secret(path, first.password + "\n")
    return f"  first admin   : {first.name}, password in {path} (mode 600; read it, then delete the file)"
