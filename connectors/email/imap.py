"""A thin IMAP client over aioimaplib: TLS, STARTTLS or plain, UID search and fetch, flags, moves, IDLE.

aioimaplib has no STARTTLS command; `ImapClient.connect` upgrades the connection itself with the
event loop's `start_tls`, then asks for the capabilities again (RFC 3501 §6.2.1: the ones announced
before TLS must not be trusted).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import aioimaplib

from connectors.email.errors import ImapError, MailConfigError

COMMAND_TIMEOUT_SECONDS = 30.0
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_UIDVALIDITY = re.compile(r"\[UIDVALIDITY (\d+)\]")
_PERMANENTFLAGS = re.compile(r"\[PERMANENTFLAGS \(([^)]*)\)\]")
_EXISTS = re.compile(r"^(\d+) EXISTS$")


def check_security(security: str, host: str, setting: str) -> None:
    """ssl, starttls, or none on loopback only: a password never crosses a network in clear text."""
    if security not in ("ssl", "starttls", "none"):
        raise MailConfigError(f"{setting}={security!r}: use ssl, starttls or none (none only on loopback)")
    if security == "none" and not is_loopback(host):
        raise MailConfigError(f"{setting}=none is for a server on this machine only; {host} needs ssl or starttls")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ImapConfig:
    """Where and how to read the support mailbox."""

    host: str
    port: int
    user: str
    password: str
    security: str = "ssl"  # ssl, starttls or none
    folder: str = "INBOX"
    tls_context: ssl.SSLContext | None = None
    timeout: float = COMMAND_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        check_security(self.security, self.host, "AUTORESPONDER_IMAP_SECURITY")

    @property
    def mailbox_id(self) -> str:
        """Names this folder of this account in Redis keys."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"


@dataclass(frozen=True)
class Selected:
    """What SELECT told us about the folder."""

    uidvalidity: int
    exists: int
    permanent_flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def keywords_allowed(self) -> bool:
        """The server keeps custom keywords ($AutoResponded) on messages."""
        return "\\*" in self.permanent_flags


def _check(response: Any, what: str) -> Any:
    if response.result != "OK":
        text = b" ".join(line for line in response.lines if isinstance(line, bytes)).decode(errors="replace")
        raise ImapError(f"IMAP {what} failed: {response.result} {text[:300]}")
    return response


def _text_lines(response: Any) -> list[str]:
    return [bytes(line).decode(errors="replace") for line in response.lines if isinstance(line, bytes)]


def _uid_set(uids: list[int]) -> str:
    """Compact IMAP sequence set: 1:3,7,9:10."""
    ranges: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 §5.1.3): "已处理" → "&XfJZBHQG-"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            encoded = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii").rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def _quote(mailbox: str) -> str:
    encoded = imap_utf7(mailbox)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapClient:
    """One authenticated IMAP connection with the folder selected."""

    def __init__(self, config: ImapConfig) -> None:
        self.config = config
        self._imap: aioimaplib.IMAP4 | None = None
        self.lost = asyncio.Event()

    @property
    def imap(self) -> aioimaplib.IMAP4:
        """The underlying aioimaplib client (connected)."""
        if self._imap is None:
            raise ImapError("not connected")
        return self._imap

    def _connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()
        imap = self._imap
        if imap is not None and imap.protocol is not None:
            # Wake an IDLE wait: the push that would have come never will.
            imap.protocol.idle_queue.put_nowait(aioimaplib.STOP_WAIT_SERVER_PUSH)

    async def _run(self, command: Awaitable[Any], what: str) -> Any:
        """Run one command, failing at once when the connection drops instead of at its timeout."""
        task = asyncio.ensure_future(command)
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not task.done():
            task.cancel()
            raise ImapError(f"IMAP connection lost during {what}")
        return _check(task.result(), what)

    def _tls_context(self) -> ssl.SSLContext:
        return self.config.tls_context or ssl.create_default_context(ssl.Purpose.SERVER_AUTH)

    async def connect(self) -> None:
        """Connect, secure the connection as configured, and log in."""
        c = self.config
        ssl_context = self._tls_context() if c.security == "ssl" else None
        self._imap = aioimaplib.IMAP4(
            host=c.host, port=c.port, timeout=c.timeout, conn_lost_cb=self._connection_lost, ssl_context=ssl_context
        )
        try:
            await self.imap.wait_hello_from_server()
            if c.security == "starttls":
                await self._starttls()
            response = await self.imap.login(c.user, c.password)
        except (TimeoutError, OSError, aioimaplib.AioImapException, ssl.SSLError) as exc:
            await self.close()
            raise ImapError(f"cannot connect to IMAP {c.host}:{c.port} ({c.security}): {exc!r}") from exc
        except BaseException:
            await self.close()
            raise
        if response.result != "OK":
            await self.close()
            raise ImapError(f"IMAP login as {c.user} refused: check AUTORESPONDER_IMAP_USER / _PASSWORD ({response})")

    async def _starttls(self) -> None:
        protocol = self.imap.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise ImapError("the IMAP server does not offer STARTTLS; use AUTORESPONDER_IMAP_SECURITY=ssl")
        response = await asyncio.wait_for(
            protocol.execute(aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)),
            self.config.timeout,
        )
        _check(response, "STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(
            protocol.transport, protocol, self._tls_context(), server_hostname=self.config.host
        )
        protocol.transport = transport
        await asyncio.wait_for(protocol.capability(), self.config.timeout)

    def has_capability(self, name: str) -> bool:
        """Whether the server announced a capability (IDLE, MOVE, UIDPLUS …)."""
        return self._imap is not None and self._imap.has_capability(name)

    async def select(self, folder: str | None = None) -> Selected:
        """Select the folder; its UIDVALIDITY, size and the flags the server keeps."""
        response = await self._run(self.imap.select(_quote(folder or self.config.folder)), "SELECT")
        text = "\n".join(_text_lines(response))
        validity = _UIDVALIDITY.search(text)
        if validity is None:
            raise ImapError("the IMAP server sent no UIDVALIDITY on SELECT")
        flags = _PERMANENTFLAGS.search(text)
        exists = next((int(m.group(1)) for line in _text_lines(response) if (m := _EXISTS.match(line.strip()))), 0)
        return Selected(
            uidvalidity=int(validity.group(1)),
            exists=exists,
            permanent_flags=frozenset(flags.group(1).split()) if flags else frozenset(),
        )

    async def uid_search(self, *criteria: str) -> list[int]:
        """UIDs matching the criteria, ascending."""
        response = await self._run(self.imap.uid_search(*criteria, charset=None), "UID SEARCH")
        uids: list[int] = []
        # aioimaplib strips the "SEARCH" word from untagged lines; the last line is the tagged status text.
        for line in _text_lines(response)[:-1]:
            uids.extend(int(tok) for tok in line.split() if tok.isdigit())
        return sorted(set(uids))

    async def fetch_sizes(self, uids: list[int]) -> dict[int, int]:
        """RFC822.SIZE of each UID (missing ones were expunged meanwhile)."""
        if not uids:
            return {}
        response = await self._run(self.imap.uid("fetch", _uid_set(uids), "(UID RFC822.SIZE)"), "UID FETCH sizes")
        sizes: dict[int, int] = {}
        for line in response.lines:
            if isinstance(line, bytes) and _FETCH_START.match(line):
                uid, size = _UID.search(line), _SIZE.search(line)
                if uid and size:
                    sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def fetch(self, uid: int, *, header_only: bool = False) -> bytes | None:
        """The raw message (or only its header) without setting \\Seen; None when it is gone."""
        part = "BODY.PEEK[HEADER]" if header_only else "BODY.PEEK[]"
        response = await self._run(self.imap.uid("fetch", str(uid), f"(UID {part})"), "UID FETCH")
        current: int | None = None
        for line in response.lines:
            if isinstance(line, bytes) and _FETCH_START.match(line):
                found = _UID.search(line)
                current = int(found.group(1)) if found else None
            elif isinstance(line, bytearray) and current == uid:
                return bytes(line)
        return None

    async def add_flags(self, uids: list[int], flags: str) -> None:
        """UID STORE +FLAGS.SILENT."""
        if uids:
            await self._run(self.imap.uid("store", _uid_set(uids), "+FLAGS.SILENT", f"({flags})"), "UID STORE")

    async def ensure_folder(self, folder: str) -> None:
        """Create a folder when it does not exist (an existing one is fine)."""
        response = await self.imap.create(_quote(folder))
        if response.result != "OK" and not any(
            "exist" in line.lower() or "ALREADYEXISTS" in line for line in _text_lines(response)
        ):
            raise ImapError(f"cannot create IMAP folder {folder!r}: {_text_lines(response)}")

    async def move(self, uids: list[int], folder: str) -> None:
        """Move messages to another folder: MOVE, or COPY + \\Deleted + UID EXPUNGE."""
        if not uids:
            return
        uid_set = _uid_set(uids)
        if self.has_capability("MOVE"):
            await self._run(self.imap.uid("move", uid_set, _quote(folder)), "UID MOVE")
            return
        await self._run(self.imap.uid("copy", uid_set, _quote(folder)), "UID COPY")
        await self.add_flags(uids, "\\Deleted")
        if self.has_capability("UIDPLUS"):
            await self._run(self.imap.uid("expunge", uid_set), "UID EXPUNGE")
        else:
            await self._run(self.imap.expunge(), "EXPUNGE")

    async def append(self, raw: bytes, folder: str | None = None, flags: str | None = None) -> None:
        """APPEND a message (how tests and tools deliver mail into the mailbox)."""
        await self._run(self.imap.append(raw, mailbox=_quote(folder or self.config.folder), flags=flags), "APPEND")

    async def wait_for_news(self, seconds: float, wake: asyncio.Event) -> None:
        """IDLE until the server reports a change, `wake` is set, or the timeout passes."""
        imap = self.imap
        idle = await imap.idle_start(timeout=seconds)
        push = asyncio.ensure_future(imap.wait_server_push(timeout=seconds + 5))
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({push, woken, idle}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            push.cancel()
            woken.cancel()
        if self.lost.is_set():
            idle.cancel()
            raise ImapError("IMAP connection lost while idling")
        if imap.has_pending_idle():
            imap.idle_done()
        # The server may be going away (a "* BYE" push): wait for the end of IDLE or of the connection.
        lost = asyncio.ensure_future(self.lost.wait())
        try:
            await asyncio.wait({idle, lost}, timeout=self.config.timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not idle.done():
            idle.cancel()
            raise ImapError("IMAP connection lost while ending IDLE" if self.lost.is_set() else "IDLE did not end")
        if idle.exception() is not None:
            raise ImapError(f"IMAP server did not end IDLE: {idle.exception()!r}")

    async def noop(self) -> None:
        """Keep the connection alive and collect untagged updates."""
        await self._run(self.imap.noop(), "NOOP")

    async def close(self) -> None:
        """Log out (best effort) and drop the connection."""
        imap, self._imap = self._imap, None
        if imap is None:
            return
        with contextlib.suppress(Exception):  # the connection may be dead already; nothing to save
            if imap.protocol is not None and imap.protocol.state in (aioimaplib.AUTH, aioimaplib.SELECTED):
                await asyncio.wait_for(imap.logout(), 5)
        transport = getattr(imap.protocol, "transport", None)
        if transport is not None:
            transport.close()
