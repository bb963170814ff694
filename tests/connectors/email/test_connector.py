"""The connector's wiring: on when AUTORESPONDER_IMAP_HOST is set, clear errors when settings are missing."""

from __future__ import annotations

import pytest

from bot.settings import Settings
from connectors import channel_classes, enabled_channels
from connectors.email.connector import EmailConnector
from connectors.email.errors import MailConfigError
from connectors.email.settings import EmailSettings


def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def mail(**values: object) -> EmailSettings:
    return EmailSettings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_off_unless_an_imap_host_is_set() -> None:
    assert EmailConnector in channel_classes()
    assert EmailConnector.from_settings(settings(), mail()) is None
    assert "email" not in enabled_channels(settings())


def test_missing_settings_are_named() -> None:
    with pytest.raises(MailConfigError, match="AUTORESPONDER_IMAP_USER, AUTORESPONDER_IMAP_PASSWORD"):
        EmailConnector.from_settings(settings(), mail(imap_host="imap.example.com"))


def test_defaults_ports_and_support_address() -> None:
    connector = EmailConnector.from_settings(
        settings(),
        mail(
            imap_host="imap.example.com",
            imap_user="Support@Shop.Test",
            imap_password="x",
            smtp_host="smtp.example.com",
        ),
    )
    assert connector is not None
    assert (connector.imap.port, connector.imap.security) == (993, "ssl")
    assert (connector.smtp.port, connector.smtp.security) == (587, "starttls")
    assert connector.support_address == "support@shop.test"  # the IMAP login, when it is an address
    assert connector.name() == "email"


def test_plain_text_to_a_remote_server_is_refused() -> None:
    with pytest.raises(MailConfigError, match="AUTORESPONDER_SMTP_SECURITY=none"):
        EmailConnector.from_settings(
            settings(),
            mail(
                imap_host="127.0.0.1",
                imap_security="none",
                imap_user="support",
                imap_password="x",
                smtp_host="smtp.example.com",
                smtp_security="none",
                support_address="support@shop.test",
            ),
        )
