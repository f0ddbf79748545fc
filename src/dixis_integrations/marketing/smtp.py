"""Plain SMTP for transactional mail (stdlib ``smtplib``), as an ``EmailProvider``.

SMTP is not HTTP: an operation of this adapter talks SMTP itself when it is run and
yields no request, so the driver's HTTP retries do not apply (retry through the journal
or the journey runner). Under asyncio use :meth:`SMTP.asend`, which runs the conversation
in a thread. The ``Message-ID`` is derived from the idempotency key, and a key already
sent by this adapter instance is not sent again. SMTP keeps no contacts: no marketing
lists, and erasure has nothing to delete.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime
from string import Template
from typing import Final, Literal, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dixis_integrations.errors import (
    AuthError,
    ConfigurationError,
    FieldError,
    InvalidInput,
    ProviderError,
    ProviderTimeout,
    TransientError,
    ValidationRejected,
)
from dixis_integrations.http.driver import Operation, unsupported
from dixis_integrations.http.redact import register_secret
from dixis_integrations.models._types import normalize_email
from dixis_integrations.models.crm import ErasureResult, UpsertResult
from dixis_integrations.models.email import EmailMessage, SendResult, Subscriber
from dixis_integrations.protocols import Capability, HealthStatus

__all__ = ["SMTP", "SMTPConfig", "build_mime", "classify_smtp_error", "message_id_for"]

VENDOR: Final = "smtp"
_T = TypeVar("_T")
_REMEMBERED: Final = 10_000


class SMTPConfig(BaseModel):
    """How to reach one SMTP relay.

    ``security``: ``starttls`` (port 587), ``ssl`` (implicit TLS, port 465) or ``none``
    (a local relay or a test server only).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    sender: str
    sender_name: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    timeout: float = Field(default=30.0, gt=0)
    local_hostname: str | None = None


def message_id_for(idempotency_key: str, sender: str) -> str:
    """The ``Message-ID`` of a send: the same key always gives the same id, so a receiver
    (or its spam filter) can recognise a duplicate."""
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{idempotency_key}@{domain}>"


def _address(email: str, name: str | None) -> Address:
    user, _, domain = email.partition("@")
    return Address(display_name=name or "", username=user, domain=domain)


def build_mime(message: EmailMessage, config: SMTPConfig, *, now: datetime) -> MimeMessage:
    """The MIME message for ``message`` (pure). ``params`` fill ``$name`` placeholders in
    the subject and bodies; text and HTML become ``multipart/alternative``.

    Raises:
        InvalidInput: bad recipient, or no text or HTML (SMTP has no provider templates).
    """
    errors: list[FieldError] = []
    try:
        to = normalize_email(message.to)
    except ValueError as exc:
        errors.append(FieldError(("to",), str(exc), "email"))
        to = message.to
    if message.html is None and message.text is None:
        errors.append(FieldError(("text",), "SMTP sends content: give text or html", "missing"))
    if errors:
        raise InvalidInput("message cannot go by SMTP", errors=errors, vendor=VENDOR)
    params = message.params
    mime = MimeMessage()
    mime["From"] = _address(config.sender, config.sender_name)
    mime["To"] = _address(to, None)
    mime["Subject"] = Template(message.subject).safe_substitute(params)
    mime["Date"] = format_datetime(now.astimezone(UTC))
    mime["Message-ID"] = message_id_for(message.idempotency_key, config.sender)
    if message.tags:
        mime["X-Tags"] = ", ".join(message.tags)
    if not message.transactional:
        mime["Precedence"] = "bulk"
    text = Template(message.text).safe_substitute(params) if message.text is not None else None
    html = Template(message.html).safe_substitute(params) if message.html is not None else None
    if text is not None:
        mime.set_content(text)
        if html is not None:
            mime.add_alternative(html, subtype="html")
    elif html is not None:
        mime.set_content(html, subtype="html")
    return mime


def classify_smtp_error(exc: BaseException) -> ProviderError:
    """An ``smtplib`` or socket failure as a typed error: 4xx replies and dropped
    connections are transient, 5xx replies are refusals, 535 is bad credentials."""
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return AuthError(
            "the SMTP server refused the credentials", vendor=VENDOR, status_code=exc.smtp_code
        )
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        code = max(codes) if codes else 550
        cls: type[ProviderError] = TransientError if 400 <= code < 500 else ValidationRejected
        return cls(
            f"recipient refused ({code})", vendor=VENDOR, status_code=code, vendor_code=str(code)
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        text = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        cls = TransientError if 400 <= code < 500 else ValidationRejected
        return cls(f"SMTP {code}: {text}", vendor=VENDOR, status_code=code, vendor_code=str(code))
    if isinstance(exc, socket.timeout | TimeoutError):
        return ProviderTimeout("the SMTP server did not answer in time", vendor=VENDOR)
    if isinstance(exc, ssl.SSLError):
        return TransientError(f"TLS failure ({type(exc).__name__})", vendor=VENDOR)
    return TransientError(f"SMTP connection failed ({type(exc).__name__})", vendor=VENDOR)


class SMTP:
    """Transactional mail through an SMTP relay.

    Args:
        config: the relay.
        tenant, auth, time_scale: accepted for the adapter convention; SMTP needs none.
    """

    name = "smtp"
    capabilities = frozenset({Capability.TRANSACTIONAL, Capability.ERASURE})

    def __init__(
        self,
        config: SMTPConfig,
        *,
        tenant: str = "default",
        auth: httpx.Auth | None = None,
        time_scale: float = 1.0,
    ) -> None:
        if config.username and config.password is None:
            raise ConfigurationError("a username needs a password", key="password", vendor=VENDOR)
        if config.password is not None:
            register_secret(config.password.get_secret_value())
        self.config = config
        self.tenant = tenant
        self._sent: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SMTP(host={self.config.host!r}, port={self.config.port})"

    # -- the conversation -------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        c = self.config
        conn: smtplib.SMTP
        if c.security == "ssl":
            conn = smtplib.SMTP_SSL(
                c.host,
                c.port,
                timeout=c.timeout,
                local_hostname=c.local_hostname,
                context=ssl.create_default_context(),
            )
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=c.timeout, local_hostname=c.local_hostname)
        try:
            conn.ehlo()
            if c.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if c.username and c.password is not None:
                conn.login(c.username, c.password.get_secret_value())
        except BaseException:
            conn.close()
            raise
        return conn

    def _talk(self, mime: MimeMessage | None) -> None:
        try:
            conn = self._connect()
            try:
                if mime is None:
                    code, _ = conn.noop()
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, b"NOOP refused")
                else:
                    conn.send_message(mime)
            finally:
                try:
                    conn.quit()
                except (smtplib.SMTPException, OSError):
                    conn.close()
        except (smtplib.SMTPException, OSError) as exc:
            raise classify_smtp_error(exc) from None

    # -- the Protocol ----------------------------------------------------------------
    def check(self) -> Operation[HealthStatus]:
        """Connect, greet, authenticate and ``NOOP``."""
        try:
            self._talk(None)
        except ProviderError as exc:
            return HealthStatus(self.name, False, detail=str(exc))
        yield from ()
        return HealthStatus(self.name, True, detail=f"{self.config.host}:{self.config.port}")

    def send(self, message: EmailMessage) -> Operation[SendResult]:
        """Send one message; a key this adapter already sent is not sent again."""
        mime = build_mime(message, self.config, now=datetime.now(UTC))
        message_id = str(mime["Message-ID"])
        with self._lock:
            if message.idempotency_key in self._sent:
                yield from ()
                return SendResult(
                    provider=self.name, message_id=message_id, accepted=True, duplicate=True
                )
        self._talk(mime)
        with self._lock:
            self._sent[message.idempotency_key] = message_id
            while len(self._sent) > _REMEMBERED:
                self._sent.popitem(last=False)
        yield from ()
        return SendResult(provider=self.name, message_id=message_id, accepted=True)

    async def asend(self, message: EmailMessage) -> SendResult:
        """:meth:`send` for asyncio: the SMTP conversation runs in a worker thread."""
        return await asyncio.to_thread(_run_to_end, self.send(message))

    def upsert_subscriber(self, subscriber: Subscriber) -> Operation[UpsertResult]:
        """SMTP has no marketing lists."""
        return unsupported("upsert_subscriber", VENDOR, "SMTP has no marketing lists")

    def erase(self, email: str) -> Operation[ErasureResult]:
        """Nothing to erase: the relay keeps no contacts (its logs follow its own policy)."""
        yield from ()
        return ErasureResult(
            provider=self.name, email=email, erased=True, detail="SMTP keeps no contacts"
        )


def _run_to_end(operation: Operation[_T]) -> _T:
    try:
        request = next(operation)
    except StopIteration as stop:
        result: _T = stop.value
        return result
    operation.close()
    raise TypeError(f"an SMTP operation made an HTTP request: {request.method} {request.url}")
