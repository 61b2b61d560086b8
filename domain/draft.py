"""AI draft replies as the Ticket keeps them: who asked, what came back, and whether a reply
was sent from it. A draft is never a message: it is staff's bookkeeping on the ticket, seen
only by the agent who asked for it (and in the staff history)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from domain.errors import ValidationError

DRAFT_TEXT_MAX = 8_000
REASON_MAX = 1_000


class DraftStatus(StrEnum):
    REQUESTED = "requested"  # the model (or retrieval) is working on it
    READY = "ready"  # text to edit and send
    REFUSED = "refused"  # the output checks (or the model) refused it: ``reason`` says why
    FAILED = "failed"  # the provider could not answer (timeouts, errors after the retries)


class DraftSource(StrEnum):
    MODEL = "model"  # an OpenAI-compatible chat model
    RETRIEVAL = "retrieval"  # the replies that resolved the most similar tickets


OUTCOMES = (DraftStatus.READY, DraftStatus.REFUSED, DraftStatus.FAILED)


@dataclass(frozen=True)
class Draft:
    id: UUID
    requested_by: str
    requested_version: int  # the ticket version the request was made at
    language: str
    allow_internal: bool = False
    status: DraftStatus = DraftStatus.REQUESTED
    text: str = ""
    reason: str = ""
    source: str = ""
    model: str = ""
    sent_message_id: UUID | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "id": str(self.id),
            "requested_by": self.requested_by,
            "requested_version": self.requested_version,
            "language": self.language,
            "allow_internal": self.allow_internal,
            "status": self.status.value,
            "text": self.text,
            "reason": self.reason,
            "source": self.source,
            "model": self.model,
            "sent_message_id": str(self.sent_message_id) if self.sent_message_id else None,
        }


def parse_outcome(value: object) -> DraftStatus:
    try:
        outcome = DraftStatus(str(value))
    except ValueError:
        outcome = DraftStatus.REQUESTED
    if outcome not in OUTCOMES:
        raise ValidationError("outcome is one of ready, refused, failed.", field="outcome")
    return outcome


def parse_source(value: object) -> DraftSource:
    try:
        return DraftSource(str(value))
    except ValueError:
        raise ValidationError("source is one of model, retrieval.", field="source") from None
