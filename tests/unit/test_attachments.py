"""Attachment rules on the Ticket aggregate: who attaches what where, limits, names, scans,
who may download, and that the events replay (through the stored JSON) to the same state."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, UUIDAsHex

from domain.attachment import (
    AttachmentLimitError,
    AttachmentLimits,
    AttachmentQuarantinedError,
    AttachmentScanningError,
    AttachmentTooLargeError,
    AttachmentTypeError,
    ScanStatus,
    clean_file_name,
)
from domain.errors import (
    ForeignTicketError,
    NotFoundError,
    PermissionDeniedError,
    TicketClosedError,
    ValidationError,
)
from domain.lifecycle import Role, Status
from domain.ticket import Ticket

CUSTOMER = "cust-1"
AGENT = "agent-1"
LIMITS = AttachmentLimits(max_bytes=1000, per_message=2, per_ticket=3)


def new_ticket() -> Ticket:
    ticket = Ticket.open(
        customer_id=CUSTOMER,
        subject="Broken",
        description="",
        actor_id=CUSTOMER,
        actor_role=Role.CUSTOMER,
    )
    ticket.collect_events()
    return ticket


def upload(ticket: Ticket, actor: str = CUSTOMER, role: Role = Role.CUSTOMER, **kw: Any) -> UUID:
    attachment_id = kw.pop("attachment_id", uuid4())
    args: dict[str, Any] = {
        "name": "shot.png",
        "content_type": "image/png",
        "size": 100,
        "message_id": None,
        "internal": False,
        "limits": LIMITS,
        **kw,
    }
    ticket.upload_attachment(attachment_id=attachment_id, actor_id=actor, actor_role=role, **args)
    return attachment_id


def scan(ticket: Ticket, attachment_id: UUID, verdict: str, signature: str = "") -> None:
    ticket.record_attachment_scan(
        attachment_id=attachment_id,
        verdict=verdict,
        signature=signature,
        actor_id="scanner",
        actor_role=Role.SYSTEM,
    )


def test_an_upload_on_the_ticket_is_recorded_scanning_with_its_cleaned_name() -> None:
    ticket = new_ticket()
    aid = upload(ticket, name="../../etc/pass\x00wd .png")
    [event] = ticket.collect_events()
    assert isinstance(event, Ticket.AttachmentUploaded)
    assert (event.attachment_id, event.name, event.content_type, event.size) == (
        aid,
        "passwd .png",
        "image/png",
        100,
    )
    assert (event.message_id, event.internal, event.actor_id, event.actor_role) == (
        None,
        False,
        CUSTOMER,
        "customer",
    )
    assert ticket.attachments[aid].status is ScanStatus.SCANNING


def test_a_file_on_a_message_follows_the_message_internal_flag() -> None:
    ticket = new_ticket()
    ticket.post_message(author_id=AGENT, author_role=Role.AGENT, body="note", internal=True)
    note = ticket.messages[-1].id
    aid = upload(ticket, AGENT, Role.AGENT, message_id=note, internal=False)
    assert ticket.attachments[aid].internal is True
    assert ticket.attachments[aid].message_id == note


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"size": 1001}, AttachmentTooLargeError, "attachment_too_large"),
        ({"size": 0}, ValidationError, "invalid"),
        ({"content_type": "text/html"}, AttachmentTypeError, "attachment_type_refused"),
        ({"internal": True}, PermissionDeniedError, "forbidden"),
        ({"message_id": uuid4()}, NotFoundError, "not_found"),
    ],
)
def test_bad_uploads_are_refused_and_store_nothing(
    change: dict[str, Any], error: type[Exception], code: str
) -> None:
    ticket = new_ticket()
    with pytest.raises(error) as info:
        upload(ticket, **change)
    assert getattr(info.value, "code", None) == code
    assert (ticket.collect_events(), ticket.attachments) == ([], {})


def test_only_the_author_attaches_to_a_message_and_customers_never_to_internal_notes() -> None:
    ticket = new_ticket()
    ticket.post_message(author_id=AGENT, author_role=Role.AGENT, body="public")
    public = ticket.messages[-1].id
    ticket.post_message(author_id=AGENT, author_role=Role.AGENT, body="note", internal=True)
    note = ticket.messages[-1].id
    ticket.collect_events()
    with pytest.raises(PermissionDeniedError):
        upload(ticket, message_id=public)
    with pytest.raises(NotFoundError):  # an internal note does not exist for a customer
        upload(ticket, message_id=note)
    with pytest.raises(ForeignTicketError):
        upload(ticket, "cust-2")
    assert ticket.collect_events() == []


def test_count_limits_per_message_and_per_ticket() -> None:
    ticket = new_ticket()
    ticket.post_message(author_id=CUSTOMER, author_role=Role.CUSTOMER, body="see files")
    message = ticket.messages[-1].id
    upload(ticket, message_id=message)
    upload(ticket, message_id=message)
    with pytest.raises(AttachmentLimitError) as info:
        upload(ticket, message_id=message)
    assert info.value.data["limit"] == 2
    upload(ticket)
    with pytest.raises(AttachmentLimitError) as info:
        upload(ticket)
    assert info.value.data["limit"] == 3
    assert len(ticket.attachments) == 3


def test_a_closed_ticket_takes_no_file_but_still_its_scan_result() -> None:
    ticket = new_ticket()
    aid = upload(ticket)
    ticket.change_status(target="closed", actor_id="admin-1", actor_role=Role.ADMIN)
    assert ticket.status is Status.CLOSED
    with pytest.raises(TicketClosedError):
        upload(ticket)
    scan(ticket, aid, "clean")
    assert ticket.attachments[aid].status is ScanStatus.CLEAN


def test_a_scan_is_recorded_once_and_only_by_the_system() -> None:
    ticket = new_ticket()
    aid = upload(ticket)
    ticket.collect_events()
    with pytest.raises(PermissionDeniedError):
        ticket.record_attachment_scan(
            attachment_id=aid, verdict="clean", signature="", actor_id=AGENT, actor_role=Role.AGENT
        )
    with pytest.raises(ValidationError):
        scan(ticket, aid, "maybe")
    scan(ticket, aid, "infected", "Eicar-Signature")
    scan(ticket, aid, "clean")  # too late: the first verdict stands
    [event] = ticket.collect_events()
    assert isinstance(event, Ticket.AttachmentScanned)
    assert (event.verdict, event.signature, event.internal) == (
        "infected",
        "Eicar-Signature",
        False,
    )
    assert ticket.attachments[aid].status is ScanStatus.INFECTED


def test_who_may_download_what() -> None:
    ticket = new_ticket()
    public = upload(ticket)
    internal = upload(ticket, AGENT, Role.AGENT, internal=True)
    bad = upload(ticket)
    with pytest.raises(AttachmentScanningError):
        ticket.attachment_for(public, actor_id=CUSTOMER, actor_role=Role.CUSTOMER)
    scan(ticket, public, "clean")
    scan(ticket, internal, "clean")
    scan(ticket, bad, "infected", "Eicar")
    assert ticket.attachment_for(public, actor_id=CUSTOMER, actor_role=Role.CUSTOMER).id == public
    assert ticket.attachment_for(internal, actor_id=AGENT, actor_role=Role.AGENT).id == internal
    with pytest.raises(NotFoundError):
        ticket.attachment_for(internal, actor_id=CUSTOMER, actor_role=Role.CUSTOMER)
    with pytest.raises(ForeignTicketError):
        ticket.attachment_for(public, actor_id="cust-2", actor_role=Role.CUSTOMER)
    with pytest.raises(AttachmentQuarantinedError):
        ticket.attachment_for(bad, actor_id=AGENT, actor_role=Role.AGENT)
    visible = ticket.visible_attachments(include_internal=False)
    assert [a.id for a in visible] == [public, bad]


def test_attachment_events_replay_through_their_stored_form() -> None:
    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    mapper: Mapper[UUID] = Mapper(transcoder=transcoder)
    ticket = Ticket.open(
        customer_id=CUSTOMER, subject="S", description="", actor_id=CUSTOMER,
        actor_role=Role.CUSTOMER,
    )  # fmt: skip
    ticket.post_message(author_id=CUSTOMER, author_role=Role.CUSTOMER, body="files")
    message = ticket.messages[-1].id
    aid = upload(ticket, message_id=message)
    scan(ticket, aid, "clean")
    stored = [mapper.to_stored_event(e) for e in ticket.collect_events()]
    assert [s.topic for s in stored[-2:]] == [
        "deskstream.ticket:AttachmentUploaded",
        "deskstream.ticket:AttachmentScanned",
    ]
    replayed: Any = None
    for s in stored:
        replayed = mapper.to_domain_event(s).mutate(replayed)
    assert replayed.attachments == ticket.attachments


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("C:\\fakepath\\photo.jpg", "photo.jpg"),
        ("...hidden", "hidden"),
        ('a<b>c"d|e?.txt', "a_b_c_d_e_.txt"),
        ("\u202egnp.exe", "gnp.exe"),  # the right-to-left override is a control character
        ("", "file"),
        ("///", "file"),
        ("x" * 300 + ".png", "x" * 251 + ".png"),
        ("Ünïcødé  name.txt", "Ünïcødé name.txt"),
    ],
)
def test_file_names_are_cleaned(raw: str, clean: str) -> None:
    assert clean_file_name(raw) == clean
