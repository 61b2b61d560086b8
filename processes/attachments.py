"""Attachment scanning: every uploaded file goes through the virus scanner before anyone is
offered it, and the verdict is recorded on the ticket as ``AttachmentScanned``.

``scan`` is the Celery task's body (``config.bootstrap.scan_attachment``; eager under
``make run``). It is idempotent: a file already scanned is left alone, so a redelivered or
repeated task records nothing twice. An infected file's blob moves to ``quarantine/`` (still
sealed), where nothing serves it from; the event is recorded first, so even a failed move
leaves the file refused. When clamd cannot be reached (or a crash came between the
upload's append and its enqueue) the file stays "scanning"; ``rescan`` enqueues every file
still scanning a minute (``RESCAN_GRACE``) after its upload: Celery beat's periodic task,
the embedded mode's thread (``rescan_thread``) and ``manage.py attachments rescan``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Protocol
from uuid import UUID

from django.db import connection

from command_api.application import Actor, DeskstreamApplication
from command_api.attachments import AttachmentPorts, blob_key, quarantine_key
from domain.attachment import ScanStatus
from domain.lifecycle import Role
from infra.clamav.scanner import ScannerError, ScanResult

log = logging.getLogger(__name__)

SCANNER = Actor("virus-scanner", Role.SYSTEM)
RESCAN_GRACE = timedelta(minutes=1)  # younger files may still have their first scan under way


class Scanner(Protocol):
    def scan(self, data: bytes) -> ScanResult: ...


def scan(
    app: DeskstreamApplication,
    ports: AttachmentPorts,
    scanner: Scanner | None,
    ticket_id: UUID,
    attachment_id: UUID,
) -> str:
    """Scan one file and record the verdict; returns what happened."""
    attachment = app.get_ticket(ticket_id).attachments.get(attachment_id)
    if attachment is None:
        return "unknown"
    if attachment.status is not ScanStatus.SCANNING:
        return "done"
    if scanner is None:
        log.warning("no virus scanner configured (DESKSTREAM_CLAMD_ADDRESS): %s waits",
                    attachment_id)  # fmt: skip
        return "no_scanner"
    key = blob_key(ticket_id, attachment_id)
    data = ports.envelope.open(str(attachment_id), ports.files.get(key))
    try:
        result = scanner.scan(data)
    except ScannerError:
        log.warning("scanning %s failed; it stays scanning", attachment_id, exc_info=True)
        return "retry"
    verdict = ScanStatus.INFECTED if result.infected else ScanStatus.CLEAN
    app.record_attachment_scan(
        ticket_id,
        SCANNER,
        attachment_id=attachment_id,
        verdict=verdict.value,
        signature=result.signature,
    )
    if verdict is ScanStatus.INFECTED:
        ports.files.put(quarantine_key(ticket_id, attachment_id), ports.files.get(key))
        ports.files.delete(key)
        log.warning("quarantined %s: %s", attachment_id, result.signature)
    return verdict.value


def rescan(pending: Iterable[tuple[UUID, UUID]], enqueue: Callable[[UUID, UUID], object]) -> int:
    """Enqueue the scan of every file still waiting for one; returns how many."""
    count = 0
    for ticket_id, attachment_id in pending:
        enqueue(ticket_id, attachment_id)
        count += 1
    return count


def rescan_thread(
    rescan_due: Callable[[], int], interval: float, stop: threading.Event
) -> threading.Thread:
    """The periodic rescan in a thread (the embedded mode has no Celery beat)."""

    def loop() -> None:
        try:
            while not stop.wait(interval):
                try:
                    rescan_due()
                except Exception:
                    log.warning("attachment rescan failed; next try in %s s", interval,
                                exc_info=True)  # fmt: skip
        finally:
            connection.close()

    return threading.Thread(target=loop, name="attachment-rescan", daemon=True)
