"""The ``EmailSender`` port: hand over one finished e-mail (both parts), get its Message-ID.

Every adapter builds the same MIME message (``OutgoingEmail.as_mime``: multipart/alternative
with a plain-text and an HTML part, UTF-8, a fixed Message-ID), so what the SMTP server
receives and what the local outbox stores are byte-for-byte the same message. The contract
suite (``tests/contracts/test_email_contract.py``) runs against every adapter.

Sending and recording "sent" cannot be one atomic step, so a sender tells its caller when it
reaches the point after which the message counts as handed over: it calls ``hand_over()``
right before that step (for SMTP, writing the end of the message's data) and does not take it
if ``hand_over`` raises. The caller records the hand-over durably there, and so knows, after
a crash, whether the message can have reached the other end (docs/notifications.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

from infra.email.templates import single_line


class EmailRejectedError(Exception):
    """The message cannot be sent as it is (bad address ...): retrying will not help."""


class EmailDeferredError(Exception):
    """The receiving server refused the message for now (a 4xx answer to its data): it was
    not delivered, a later attempt may be."""


class DeliveryUncertainError(Exception):
    """The connection failed after the message was handed over and before the server
    answered: it may or may not have been delivered, and must not be sent again."""


HandOver = Callable[[], None]


def no_hand_over() -> None:
    """The default ``hand_over``: nobody records it."""


@dataclass(frozen=True)
class OutgoingEmail:
    to_address: str
    to_name: str
    from_address: str
    from_name: str
    subject: str
    text: str
    html: str
    message_id: str  # "<unique@domain>": the same on a retry, so receivers can drop copies
    headers: dict[str, str] = field(default_factory=dict)
    date: datetime | None = None

    def as_mime(self) -> EmailMessage:
        try:
            to = Address(display_name=single_line(self.to_name), addr_spec=self.to_address)
            sender = Address(display_name=single_line(self.from_name), addr_spec=self.from_address)
        except (ValueError, IndexError, HeaderParseError) as err:
            raise EmailRejectedError(f"bad address: {err}") from err
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to
        msg["Subject"] = single_line(self.subject)
        msg["Date"] = format_datetime(self.date or datetime.now(UTC))
        msg["Message-ID"] = single_line(self.message_id)
        for name, value in self.headers.items():
            msg[single_line(name)] = single_line(value)
        msg.set_content(self.text)
        msg.add_alternative(self.html, subtype="html")
        return msg


class EmailSender(Protocol):
    def send(self, email: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
        """Deliver (or store) the message; return its Message-ID. Raise if it did not go.

        ``hand_over()`` is called once, right before the step that cannot be taken back; if
        it raises, that step is not taken (nothing is delivered) and its error propagates.
        A sender whose delivery is idempotent by Message-ID (the file outbox: a message
        stored again replaces its file) may deliver without calling it."""


class FanOutEmailSender:
    """Every sender in turn (the local outbox and SMTP in ``make run`` with SMTP set);
    ``hand_over`` is called at most once, by the first sender that reaches its step."""

    def __init__(self, senders: Sequence[EmailSender]) -> None:
        self.senders = list(senders)

    def send(self, email: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
        handed = False

        def once() -> None:
            nonlocal handed
            if not handed:
                hand_over()
                handed = True

        for sender in self.senders:
            sender.send(email, once)
        return email.message_id
