"""``EmailSender`` into a local directory of ``.eml`` files: the mailbox of ``make run``.

One file per message, named after its Message-ID (a message sent again replaces its file).
Files are written under a temporary name and renamed, so a reader never sees half a file.
``GET /api/outbox`` (admins) lists them and shows one (``read_api/email_views.py``).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from infra.email.ports import HandOver, OutgoingEmail, no_hand_over

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}\.eml$")


def file_name(message_id: str) -> str:
    return _UNSAFE.sub("_", message_id.strip("<>"))[:190].strip("._") + ".eml"


@dataclass(frozen=True)
class OutboxEntry:
    name: str
    to: str
    sender: str
    subject: str
    date: str
    message_id: str
    stored_at: datetime
    size: int


class FileOutboxEmailSender:
    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def send(self, email_: OutgoingEmail, hand_over: HandOver = no_hand_over) -> str:
        # Idempotent by Message-ID (a message stored again replaces its file): no hand-over.
        self.directory.mkdir(parents=True, exist_ok=True)
        data = email_.as_mime().as_bytes()
        name = file_name(email_.message_id)
        tmp = self.directory / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)
        return email_.message_id

    # ------------------------------------------------------------------ reading it back
    def entries(self) -> list[OutboxEntry]:
        """Every stored message, newest first."""
        if not self.directory.is_dir():
            return []
        out = []
        for path in self.directory.glob("*.eml"):
            try:
                stat = path.stat()
                msg = self._parse(path.read_bytes())
            except FileNotFoundError:  # replaced or removed meanwhile
                continue
            out.append(
                OutboxEntry(
                    name=path.name,
                    to=str(msg["To"] or ""),
                    sender=str(msg["From"] or ""),
                    subject=str(msg["Subject"] or ""),
                    date=str(msg["Date"] or ""),
                    message_id=str(msg["Message-ID"] or ""),
                    stored_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                    size=stat.st_size,
                )
            )
        out.sort(key=lambda e: (e.stored_at, e.name), reverse=True)
        return out

    def message(self, name: str) -> EmailMessage | None:
        """One stored message by file name (None if there is none by that name)."""
        if not NAME.match(name):
            return None
        path = self.directory / name
        try:
            return self._parse(path.read_bytes())
        except (FileNotFoundError, IsADirectoryError):
            return None

    @staticmethod
    def _parse(data: bytes) -> EmailMessage:
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg
