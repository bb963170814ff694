"""The IMAP client against a real dovecot: TLS, STARTTLS and plain; search, fetch, flags, moves, IDLE."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from connectors.email.errors import ImapError, MailConfigError
from connectors.email.imap import ImapClient, ImapConfig, check_security, imap_utf7
from tests.connectors.email.mails import build, guest
from tests.connectors.email.servers import Dovecot, start_dovecot


@pytest.fixture(scope="module")
def dovecot_tls() -> Iterator[Dovecot]:
    """Dovecot with a self-signed certificate: STARTTLS on the plain port, TLS on the other."""
    server = start_dovecot(["tls"], tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def dovecot_no_idle() -> Iterator[Dovecot]:
    """Dovecot announcing no IDLE, like servers that only allow polling."""
    server = start_dovecot(["poll"], idle=False)
    yield server
    server.stop()


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
async def test_connects_with_tls_starttls_and_plain(dovecot_tls: Dovecot, security: str) -> None:
    client = ImapClient(dovecot_tls.config("tls", security=security))
    await client.connect()
    try:
        selected = await client.select()
        assert selected.uidvalidity > 0
        protocol = client.imap.protocol
        encrypted = protocol.transport.get_extra_info("ssl_object") is not None
        assert encrypted == (security != "none")
        # After STARTTLS the capabilities are asked again: no STARTTLS offered inside TLS.
        if security == "starttls":
            assert "STARTTLS" not in protocol.capabilities
    finally:
        await client.close()


async def test_tls_with_an_untrusted_certificate_is_refused(dovecot_tls: Dovecot) -> None:
    config = dovecot_tls.config("tls", security="ssl")
    from dataclasses import replace

    client = ImapClient(replace(config, tls_context=None))  # system trust store: the test CA is not in it
    with pytest.raises(ImapError, match="cannot connect"):
        await client.connect()


async def test_wrong_password_is_a_clear_error(dovecot: Dovecot) -> None:
    from dataclasses import replace

    client = ImapClient(replace(dovecot.config("client"), password="wrong"))
    with pytest.raises(ImapError, match="login as client refused"):
        await client.connect()


async def test_starttls_is_required_when_asked_for(dovecot: Dovecot) -> None:
    client = ImapClient(dovecot.config("client", security="starttls"))  # this dovecot has no TLS
    with pytest.raises(ImapError, match="STARTTLS"):
        await client.connect()


async def test_search_fetch_flag_and_move(dovecot: Dovecot) -> None:
    a = build(sender=guest(), subject="one", body="first")
    b = build(sender=guest(), subject="two", body="second " * 50)
    await dovecot.deliver("imapops", a, b)
    client = await dovecot.client("imapops")
    try:
        selected = await client.select()
        assert selected.keywords_allowed
        uids = await client.uid_search("UID 1:*", "UNKEYWORD $AutoResponded")
        assert len(uids) == 2
        sizes = await client.fetch_sizes(uids)
        assert sizes[uids[1]] > sizes[uids[0]]
        raw = await client.fetch(uids[0])
        assert raw is not None and raw.replace(b"\r\n", b"\n") == a.replace(b"\r\n", b"\n")
        header = await client.fetch(uids[1], header_only=True)
        assert header is not None and b"Subject: two" in header and b"second" not in header
        # Fetching must not mark mail read: a person watching the mailbox still sees it unread.
        assert await client.uid_search("UID 1:*", "UNSEEN") == uids
        await client.add_flags([uids[0]], "\\Seen $AutoResponded")
        assert await client.uid_search("UID 1:*", "UNKEYWORD $AutoResponded") == [uids[1]]
        await client.ensure_folder("Done")
        await client.ensure_folder("Done")  # already there: fine
        await client.move([uids[1]], "Done")
        assert await client.uid_search("UID 1:*") == [uids[0]]
        assert await client.fetch(uids[1]) is None
    finally:
        await client.close()


async def test_idle_wakes_up_when_mail_arrives(dovecot: Dovecot) -> None:
    client = await dovecot.client("client")
    try:
        await client.select()
        assert client.has_capability("IDLE")

        async def deliver_soon() -> None:
            await asyncio.sleep(0.5)
            await dovecot.deliver("client", build(sender=guest(), subject="new", body="hello"))

        task = asyncio.create_task(deliver_soon())
        started = time.monotonic()
        await client.wait_for_news(30, asyncio.Event())
        assert time.monotonic() - started < 5
        await task
        wake = asyncio.Event()
        asyncio.get_running_loop().call_later(0.3, wake.set)
        started = time.monotonic()
        await client.wait_for_news(30, wake)
        assert time.monotonic() - started < 3
        await client.noop()  # the connection is usable after IDLE
    finally:
        await client.close()


async def test_server_without_idle_is_detected(dovecot_no_idle: Dovecot) -> None:
    client = await dovecot_no_idle.client("poll")
    try:
        await client.select()
        assert not client.has_capability("IDLE")
        assert client.has_capability("MOVE")
    finally:
        await client.close()


def test_folder_names_in_modified_utf7() -> None:
    assert imap_utf7("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"  # RFC 3501's example
    assert imap_utf7("已处理") == "&XfJZBHQG-"
    assert imap_utf7("Q&A") == "Q&-A"


def test_plain_connections_only_on_loopback() -> None:
    for host in ("127.0.0.1", "::1", "localhost"):
        check_security("none", host, "AUTORESPONDER_IMAP_SECURITY")
    with pytest.raises(MailConfigError, match="needs ssl or starttls"):
        ImapConfig(host="mail.example.com", port=143, user="u", password="p", security="none")
    with pytest.raises(MailConfigError, match="use ssl, starttls or none"):
        check_security("tls", "127.0.0.1", "AUTORESPONDER_SMTP_SECURITY")
