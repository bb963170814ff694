"""Real mail servers on loopback for the email tests: Debian's dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from bot.ops.stack import free_port
from connectors.email.imap import ImapClient, ImapConfig

PASSWORD = "test-imap-secret"


def dovecot_binary() -> str | None:
    """The dovecot executable, if installed."""
    return shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None)


def need_dovecot() -> str:
    """The dovecot binary; skip without it, except under CI=true where a missing server is a failure."""
    found = dovecot_binary()
    if found:
        return found
    message = "dovecot is not installed: run `bash scripts/mailserver.sh` (make test does) to install dovecot-imapd"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost (openssl CLI), as cert and key files."""
    if shutil.which("openssl") is None:
        message = "openssl is not installed (it comes with dovecot-imapd: run `bash scripts/mailserver.sh`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subj_alt = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"]
    subprocess.run(
        [*command, "-addext", subj_alt, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    key.chmod(0o644)  # dovecot reads it as root before dropping privileges; the folder is private
    return cert, key


def client_tls(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the test certificate (hostname checked against 127.0.0.1)."""
    return ssl.create_default_context(cafile=str(cert))


@dataclass
class Dovecot:
    """One dovecot instance in its own temporary folder, mail owned by an unprivileged user."""

    root: Path
    port: int
    tls_port: int | None
    cert: Path | None
    proc: subprocess.Popen[bytes]
    users: list[str] = field(default_factory=list)

    def config(self, user: str, *, security: str = "none", folder: str = "INBOX") -> ImapConfig:
        """Client settings for one of the server's users."""
        port = self.tls_port if security == "ssl" and self.tls_port else self.port
        tls = client_tls(self.cert) if self.cert and security != "none" else None
        return ImapConfig(
            host="127.0.0.1", port=port, user=user, password=PASSWORD, security=security, folder=folder, tls_context=tls
        )

    async def client(self, user: str, folder: str = "INBOX") -> ImapClient:
        """A connected client (plain, loopback) for delivering and inspecting mail in tests."""
        imap = ImapClient(self.config(user, folder=folder))
        await imap.connect()
        return imap

    async def deliver(self, user: str, *messages: bytes, folder: str = "INBOX") -> None:
        """APPEND messages to a user's folder, the way mail lands for the reader."""
        imap = await self.client(user, folder)
        try:
            for raw in messages:
                await imap.append(raw, folder)
        finally:
            await imap.close()

    def _kill(self) -> None:
        # The whole process group: dovecot's imap processes would otherwise keep their sessions open.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server with every session and start it again on the same port with the same mail (an outage)."""
        self._kill()
        time.sleep(down_seconds)
        self.proc = _spawn_dovecot(self.root)
        _wait_greeting(self)

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self._kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start_dovecot(users: list[str], *, tls: bool = False, idle: bool = True) -> Dovecot:
    """Start dovecot in the foreground: passwd-file users, maildir, plaintext allowed on loopback, no chroot."""
    need_dovecot()
    # Not under pytest's private tmp: the unprivileged mail user must be able to reach the mail folder.
    root = Path(tempfile.mkdtemp(prefix="ar-dovecot-"))
    root.chmod(0o755)
    nobody = pwd.getpwnam("nobody")
    mail = root / "mail"
    mail.mkdir()
    os.chown(mail, nobody.pw_uid, nobody.pw_gid)
    (root / "passwd").write_text(
        "".join(f"{u}:{{PLAIN}}{PASSWORD}:{nobody.pw_uid}:{nobody.pw_gid}::{mail / u}::\n" for u in users)
    )
    port = free_port()
    tls_port = free_port() if tls else None
    cert = key = None
    if tls:
        cert, key = make_certificate(root)
    ssl_lines = f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\n" if tls else "ssl = no\n"
    imaps = (
        f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls_port}\n    ssl = yes\n  }}\n"
        if tls
        else "  inet_listener imaps {\n    port = 0\n  }\n"
    )
    # Without IDLE in the capability list the reader must fall back to polling.
    capability = "" if idle else "imap_capability = IMAP4rev1 LITERAL+ SASL-IR ID ENABLE UIDPLUS MOVE\n"
    (root / "dovecot.conf").write_text(
        f"""base_dir = {root}/run
state_dir = {root}/state
instance_name = ar-test-{port}
protocols = imap
listen = 127.0.0.1
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
first_valid_uid = 1
first_valid_gid = 1
log_path = {root}/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
imap_idle_notify_interval = 2 mins
{capability}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{imaps}}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"""
    )
    proc = _spawn_dovecot(root)
    server = Dovecot(root, port, tls_port, cert, proc, users)
    _wait_greeting(server)
    return server


def _spawn_dovecot(root: Path) -> subprocess.Popen[bytes]:
    with open(root / "stderr.log", "ab") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [need_dovecot(), "-F", "-c", str(root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _wait_greeting(server: Dovecot) -> None:
    deadline = time.monotonic() + 15
    while True:
        if server.proc.poll() is not None:
            text = (server.root / "stderr.log").read_text(errors="replace")
            log_file = server.root / "dovecot.log"
            log = log_file.read_text(errors="replace") if log_file.exists() else ""
            code = server.proc.returncode
            server.stop()
            pytest.fail(f"dovecot exited with {code}: {text}\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5) as s:
                if s.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail("dovecot did not start within 15 s")
        time.sleep(0.1)


@dataclass
class Received:
    """One message an SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    at: float

    @property
    def message(self) -> EmailMessage:
        """The parsed message."""
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def header(self, name: str) -> str:
        """A header's value ("" when absent)."""
        return str(self.message.get(name, "") or "")

    def text(self) -> str:
        """The text/plain part."""
        part = self.message.get_body(("plain",))
        return str(part.get_content()) if part is not None else ""

    def html(self) -> str:
        """The text/html part."""
        part = self.message.get_body(("html",))
        return str(part.get_content()) if part is not None else ""


class RecordingHandler:
    """aiosmtpd handler that records every accepted message; `policy` may refuse some with a reply code."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.policy: Callable[[Any], str | None] | None = None
        self.transactions = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd hook name
        """Accept (and record) or refuse according to `policy`."""
        self.transactions += 1
        if self.policy is not None:
            refusal = self.policy(envelope)
            if refusal:
                return refusal
        data = envelope.original_content or envelope.content
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(data), time.time()))
        return "250 Message accepted for delivery"

    def snapshot(self) -> list[Received]:
        """A copy of what was received so far."""
        with self.lock:
            return list(self.received)

    def replies_to(self, message_id: str) -> list[Received]:
        """Messages whose In-Reply-To names this Message-ID (without brackets)."""
        return [r for r in self.snapshot() if r.header("In-Reply-To").strip().strip("<>") == message_id]


@dataclass
class Smtp:
    """An aiosmtpd server on loopback and what it received."""

    controller: Controller
    handler: RecordingHandler
    port: int

    def stop(self) -> None:
        """Stop the server thread."""
        self.controller.stop()


def start_smtp(*, tls_cert: Path | None = None, tls_key: Path | None = None, implicit_tls: bool = False) -> Smtp:
    """aiosmtpd's Controller on a free loopback port (optionally STARTTLS, or TLS from the first byte)."""
    handler = RecordingHandler()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if tls_cert and tls_key:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(str(tls_cert), str(tls_key))
        if implicit_tls:
            kwargs["ssl_context"] = server_ctx
        else:
            kwargs["tls_context"] = server_ctx
            kwargs["require_starttls"] = True
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    return Smtp(controller, handler, port)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    """Poll until the predicate holds; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


async def until(predicate: Callable[[], bool], seconds: float, what: str, step: float = 0.1) -> None:
    """`wait_until` for async tests: polls without blocking the event loop."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(step)
