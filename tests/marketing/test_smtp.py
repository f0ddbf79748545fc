"""SMTP provider: the exact MIME message, then real sends to a local aiosmtpd server."""

from __future__ import annotations

import asyncio
import email
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from pydantic import SecretStr

from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    InvalidInput,
    NotSupported,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.http import AsyncDriver, Driver
from dixis_integrations.marketing.smtp import SMTP, SMTPConfig, build_mime, message_id_for
from dixis_integrations.models.customer import MarketingConsent
from dixis_integrations.models.email import EmailMessage, Subscriber
from dixis_integrations.protocols import EmailProvider

NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def message(**overrides: Any) -> EmailMessage:
    data: dict[str, Any] = {
        "to": "Eleni@Example.gr",
        "subject": "Η παραγγελία σας $order",
        "text": "Γεια σας $first_name, η παραγγελία $order στάλθηκε.",
        "html": "<p>Γεια σας $first_name</p>",
        "params": {"order": "D-1001", "first_name": "Ελένη"},
        "idempotency_key": "6f1c1a52-0000-4000-8000-000000000001",
        "tags": ("order",),
        "transactional": True,
    }
    data.update(overrides)
    return EmailMessage(**data)


CONFIG = SMTPConfig(host="127.0.0.1", sender="orders@dixis.gr", sender_name="Dixis Fresh")


# -- pure ------------------------------------------------------------------------------------


def test_mime_message_has_our_headers_and_both_bodies() -> None:
    mime = build_mime(message(), CONFIG, now=NOW)
    assert mime["From"] == "Dixis Fresh <orders@dixis.gr>"
    assert mime["To"] == "eleni@example.gr"
    assert mime["Subject"] == "Η παραγγελία σας D-1001"
    assert mime["Message-ID"] == "<6f1c1a52-0000-4000-8000-000000000001@dixis.gr>"
    assert mime["Date"] == "Sat, 14 Mar 2026 09:30:00 +0000"
    assert mime["X-Tags"] == "order"
    assert mime["Precedence"] is None
    assert mime.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in mime.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = next(mime.iter_parts())
    assert text.get_content().strip() == "Γεια σας Ελένη, η παραγγελία D-1001 στάλθηκε."


def test_marketing_mail_is_marked_bulk_and_html_only_is_single_part() -> None:
    mime = build_mime(message(text=None, transactional=False), CONFIG, now=NOW)
    assert mime["Precedence"] == "bulk"
    assert mime.get_content_type() == "text/html"


def test_same_key_same_message_id() -> None:
    assert message_id_for("k1", "a@dixis.gr") == message_id_for("k1", "b@dixis.gr")
    assert message_id_for("k1", "a@dixis.gr") != message_id_for("k2", "a@dixis.gr")


def test_bad_recipient_and_template_only_are_refused_with_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        build_mime(
            message(to="not-an-email", text=None, html=None, template_id="t1"), CONFIG, now=NOW
        )
    assert [e.path for e in info.value.errors] == ["to", "text"]


def test_username_without_password_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="password"):
        SMTP(SMTPConfig(host="h", sender="a@b.gr", username="u"))


def test_the_password_never_shows_in_repr() -> None:
    config = SMTPConfig(host="h", sender="a@b.gr", username="u", password=SecretStr("hunter2"))
    assert "hunter2" not in repr(SMTP(config)) + repr(config)


# -- against a real local SMTP server -------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.endswith("@refused.gr"):
            return "550 5.1.1 no such user"
        if address.endswith("@busy.gr"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def inbox() -> Iterator[tuple[_Inbox, int]]:
    handler = _Inbox()
    port = _free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def smtp_for(port: int, **overrides: Any) -> SMTP:
    data: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "orders@dixis.gr",
        "security": "none",
        "username": "dixis",
        "password": SecretStr("s3cret"),
        "timeout": 5.0,
    }
    data.update(overrides)
    return SMTP(SMTPConfig(**data))


def test_smtp_is_an_email_provider() -> None:
    assert isinstance(smtp_for(25), EmailProvider)


def test_a_send_reaches_the_server_once_per_key(inbox: tuple[_Inbox, int]) -> None:
    box, port = inbox
    adapter = smtp_for(port)
    driver = Driver(sleep=lambda _s: None)
    first = driver.run(adapter.send(message()))
    again = driver.run(adapter.send(message()))
    assert first.accepted
    assert not first.duplicate
    assert again.duplicate
    assert len(box.messages) == 1
    mail_from, rcpt, parsed = box.messages[0]
    assert (mail_from, rcpt) == ("orders@dixis.gr", ["eleni@example.gr"])
    assert parsed["Message-ID"] == first.message_id
    assert str(email.header.make_header(email.header.decode_header(parsed["Subject"]))) == (
        "Η παραγγελία σας D-1001"
    )


def test_async_send_runs_in_a_thread(inbox: tuple[_Inbox, int]) -> None:
    box, port = inbox
    adapter = smtp_for(port)

    async def main() -> bool:
        result = await adapter.asend(message(idempotency_key="k-async"))
        via_driver = await AsyncDriver().run(adapter.send(message(idempotency_key="k-async-2")))
        return result.accepted and via_driver.accepted

    assert asyncio.run(main())
    assert len(box.messages) == 2


def test_refused_recipient_is_a_rejection_and_busy_is_transient(inbox: tuple[_Inbox, int]) -> None:
    box, port = inbox
    driver = Driver(sleep=lambda _s: None)
    with pytest.raises(ValidationRejected) as refused:
        driver.run(smtp_for(port).send(message(to="nobody@refused.gr")))
    assert refused.value.status_code == 550
    with pytest.raises(TransientError):
        driver.run(smtp_for(port).send(message(to="x@busy.gr", idempotency_key="k2")))
    assert box.messages == []


def test_wrong_password_is_an_auth_error(inbox: tuple[_Inbox, int]) -> None:
    _, port = inbox
    adapter = smtp_for(port, password=SecretStr("wrong"))
    with pytest.raises(AuthError) as info:
        Driver().run(adapter.send(message()))
    assert "wrong" not in str(info.value)
    assert not Driver().run(adapter.check()).ok


def test_check_greets_and_noops(inbox: tuple[_Inbox, int]) -> None:
    _, port = inbox
    assert Driver().run(smtp_for(port).check()).ok


def test_no_server_is_transient() -> None:
    with pytest.raises(TransientError):
        Driver().run(smtp_for(_free_port()).send(message()))


def test_bad_message_never_connects(inbox: tuple[_Inbox, int]) -> None:
    box, port = inbox
    with pytest.raises(InvalidInput):
        Driver().run(smtp_for(port).send(message(to="bad")))
    assert box.messages == []


def test_no_lists_at_smtp_and_nothing_to_erase() -> None:
    adapter = smtp_for(25)
    sub = Subscriber(email="a@b.gr", consent=MarketingConsent())
    with pytest.raises(NotSupported):
        Driver().run(adapter.upsert_subscriber(sub))
    assert Driver().run(adapter.erase("a@b.gr")).erased
