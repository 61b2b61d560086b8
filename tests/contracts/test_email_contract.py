"""The ``EmailSender`` port's contract, run against every adapter: SMTP (against a real
aiosmtpd server on loopback) and the local ``.eml`` outbox.

Each adapter fixture gives the sender and a ``received()`` that returns what arrived at the
other end, parsed: for SMTP what the server got, for the outbox what the files hold.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from infra.email.outbox import FileOutboxEmailSender
from infra.email.ports import EmailRejectedError, EmailSender, OutgoingEmail
from infra.email.smtp import SmtpEmailSender, SmtpSettings
from tests.conftest import free_port
from tests.support.smtp import SmtpSink

ADAPTERS = ["smtp", "outbox"]


@dataclass
class Adapter:
    sender: EmailSender
    received: Callable[[], list[tuple[tuple[str, ...], EmailMessage]]]  # (recipients, message)


@pytest.fixture
def smtp_adapter() -> Iterator[Adapter]:
    sink = SmtpSink(free_port()).start()
    try:
        yield Adapter(
            SmtpEmailSender(SmtpSettings(host="127.0.0.1", port=sink.port, timeout=10)),
            lambda: [(r.rcpt_tos, r.message) for r in sink.received],
        )
    finally:
        sink.stop()


@pytest.fixture
def outbox_adapter(tmp_path: Path) -> Adapter:
    outbox = FileOutboxEmailSender(tmp_path / "outbox")

    def received() -> list[tuple[tuple[str, ...], EmailMessage]]:
        out = []
        for entry in reversed(outbox.entries()):
            msg = email.message_from_bytes(
                (outbox.directory / entry.name).read_bytes(), policy=email.policy.default
            )
            assert isinstance(msg, EmailMessage)
            out.append(((str(msg["To"].addresses[0].addr_spec),), msg))
        return out

    return Adapter(outbox, received)


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> Adapter:
    return request.getfixturevalue(f"{request.param}_adapter")  # type: ignore[no-any-return]


def mail(**changes: object) -> OutgoingEmail:
    base = OutgoingEmail(
        to_address="maria@acme.test",
        to_name="Maria Garcia",
        from_address="support@deskstream.test",
        from_name="Deskstream",
        subject='[Deskstream] New reply on "Printer on fire"',
        text="Hello Maria,\n\nWhich printer?\n",
        html="<p>Hello Maria,</p>\n<blockquote>Which printer?</blockquote>\n",
        message_id="<6f1c5b1e-1111-4c1e-9d7e-000000000001@deskstream.test>",
        headers={"X-Deskstream-Kind": "public_reply"},
        date=datetime(2026, 11, 26, 19, 4, 10, tzinfo=UTC),
    )
    return OutgoingEmail(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def parts(msg: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML parts, with SMTP's CRLF line ends read as newlines."""
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None
    assert html is not None
    return (
        text.get_content().replace("\r\n", "\n"),
        html.get_content().replace("\r\n", "\n"),
    )


def test_a_message_arrives_exactly_as_sent(adapter: Adapter) -> None:
    sent = mail()
    assert adapter.sender.send(sent) == sent.message_id
    [(rcpt, msg)] = adapter.received()
    assert rcpt == ("maria@acme.test",)
    assert msg["From"] == "Deskstream <support@deskstream.test>"
    assert msg["To"] == "Maria Garcia <maria@acme.test>"
    assert msg["Subject"] == '[Deskstream] New reply on "Printer on fire"'
    assert msg["Message-ID"] == sent.message_id
    assert msg["Date"] == "Thu, 26 Nov 2026 19:04:10 +0000"
    assert msg["X-Deskstream-Kind"] == "public_reply"
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert parts(msg) == (sent.text, sent.html)


def test_non_ascii_names_subjects_and_bodies_survive(adapter: Adapter) -> None:
    adapter.sender.send(
        mail(
            to_name="Zoë Ångström",
            subject="Réponse : « imprimante » 🔥",
            text="Grüße ✓\n",
            html="<p>Grüße ✓</p>\n",
        )
    )
    [(_, msg)] = adapter.received()
    assert msg["To"] == "Zoë Ångström <maria@acme.test>"
    assert msg["Subject"] == "Réponse : « imprimante » 🔥"
    assert parts(msg) == ("Grüße ✓\n", "<p>Grüße ✓</p>\n")


def test_line_breaks_cannot_add_headers_or_recipients(adapter: Adapter) -> None:
    adapter.sender.send(
        mail(
            subject="Hi\r\nBcc: victim@example.com",
            to_name="Maria\nCc: x@example.com",
            headers={"X-Deskstream-Kind": "public_reply\r\nBcc: y@example.com"},
        )
    )
    [(rcpt, msg)] = adapter.received()
    assert rcpt == ("maria@acme.test",)
    assert msg["Bcc"] is None
    assert msg["Cc"] is None
    assert msg["Subject"] == "Hi Bcc: victim@example.com"
    assert msg["X-Deskstream-Kind"] == "public_reply Bcc: y@example.com"


@pytest.mark.parametrize("address", ["not an address", "a@b@c", "", "x@y.z\r\nBcc: q@w.e"])
def test_an_unusable_address_is_rejected_and_nothing_is_sent(
    adapter: Adapter, address: str
) -> None:
    with pytest.raises(EmailRejectedError):
        adapter.sender.send(mail(to_address=address))
    assert adapter.received() == []


def test_several_messages_arrive_in_order(adapter: Adapter) -> None:
    for i in range(3):
        adapter.sender.send(mail(message_id=f"<m{i}@deskstream.test>", subject=f"n{i}"))
    assert [m["Subject"] for _, m in adapter.received()] == ["n0", "n1", "n2"]
