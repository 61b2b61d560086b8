"""Attachment rules: the limits a file must meet, its cleaned name, its scan verdict.

Pure policy; the bytes themselves (type detection, storage, encryption, scanning) are the
adapters' business. The ticket aggregate (``domain.ticket``) applies these rules when a file
is uploaded, so one implementation decides for every way in.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.errors import DomainError, ValidationError

NAME_MAX = 255


class ScanStatus(StrEnum):
    """Where a file stands: offered to nobody until ``clean``; ``infected`` is quarantined."""

    SCANNING = "scanning"
    CLEAN = "clean"
    INFECTED = "infected"


VERDICTS = frozenset({ScanStatus.CLEAN.value, ScanStatus.INFECTED.value})


class AttachmentTooLargeError(ValidationError):
    """The file is bigger than the configured limit (or empty)."""

    code = "attachment_too_large"


class AttachmentTypeError(ValidationError):
    """The content (not the name) is of a type that is not accepted."""

    code = "attachment_type_refused"


class AttachmentLimitError(ValidationError):
    """The message or ticket already has as many files as it may."""

    code = "too_many_attachments"


@dataclass(frozen=True)
class AttachmentLimits:
    """Set by the operator (``DESKSTREAM_ATTACHMENT_*``), handed in with each upload."""

    max_bytes: int = 10 * 1024 * 1024
    per_message: int = 10
    per_ticket: int = 50
    content_types: frozenset[str] = field(
        default_factory=lambda: frozenset(
            {
                "image/png",
                "image/jpeg",
                "image/gif",
                "image/webp",
                "application/pdf",
                "text/plain",
                "application/zip",
            }
        )
    )


@dataclass(frozen=True)
class Attachment:
    """One file of a ticket, as the aggregate keeps it."""

    id: UUID
    name: str
    content_type: str
    size: int
    uploader_id: str
    uploader_role: str
    message_id: UUID | None
    internal: bool
    status: ScanStatus = ScanStatus.SCANNING
    signature: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "content_type": self.content_type,
            "size": self.size,
            "uploader_id": self.uploader_id,
            "uploader_role": self.uploader_role,
            "message_id": str(self.message_id) if self.message_id else None,
            "internal": self.internal,
            "status": self.status.value,
        }


_UNSAFE = re.compile(r"[^\w .()+,=@#&'!~-]")
_SPACES = re.compile(r"\s+")


def clean_file_name(raw: object) -> str:
    """A name safe to show and to put in a ``Content-Disposition``: no directories, no
    control or odd characters, no leading dots, at most ``NAME_MAX`` characters with the
    extension kept. Nothing usable left gives ``"file"``."""
    if not isinstance(raw, str):
        raise ValidationError("The file name must be a string.", field="name")
    name = unicodedata.normalize("NFC", raw)
    name = re.split(r"[/\\]", name)[-1]  # a browser may send C:\fakepath\x.png
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name)
    name = _SPACES.sub(" ", name).strip().lstrip(".").strip()
    if not name.strip("_ "):
        return "file"
    if len(name) > NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: NAME_MAX - len(ext) - 1] + "." + ext
        else:
            name = name[:NAME_MAX]
    return name


def check_file(size: int, content_type: str, limits: AttachmentLimits) -> None:
    """Refuse a file that is empty, too big, or of a type the desk does not take."""
    if size <= 0:
        raise ValidationError("The file is empty.", field="file")
    if size > limits.max_bytes:
        raise AttachmentTooLargeError(
            f"The file is {size} bytes; at most {limits.max_bytes} bytes are accepted.",
            field="file",
            size=size,
            max_bytes=limits.max_bytes,
        )
    if content_type not in limits.content_types:
        raise AttachmentTypeError(
            f"Files of type {content_type} are not accepted.",
            field="file",
            content_type=content_type,
            accepted=sorted(limits.content_types),
        )


def parse_verdict(value: object) -> ScanStatus:
    if not isinstance(value, str) or value not in VERDICTS:
        raise ValidationError("verdict must be clean or infected.", field="verdict")
    return ScanStatus(value)


class AttachmentScanningError(DomainError):
    """The file has not been scanned yet: it is offered to nobody until it is clean."""

    code = "attachment_scanning"


class AttachmentQuarantinedError(DomainError):
    """The scanner found malware: the file is quarantined and never served."""

    code = "attachment_quarantined"
