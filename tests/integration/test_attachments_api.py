"""Attachments through the HTTP API, against the real event store, a real ``clamd`` (with a
local signature database that knows EICAR) and, for S3, a real ``moto_server``; both are
started by ``scripts/with_services.py``. Scans run as eager Celery tasks in the test process,
so the verdict is recorded by the time the upload answers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from unittest.mock import ANY
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from rest_framework.test import APIClient

from command_api.application import get_application
from infra.storage.links import sign_link
from tests.support.eicar import EICAR
from tests.support.files import clamd_address, s3_endpoint, s3_settings

__all__ = ["clamd_address", "s3_endpoint"]

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + os.urandom(200)


@pytest.fixture
def files(settings: Any, tmp_path: Path, clamd_address: tuple[str, int]) -> Path:
    """Local storage in a directory of this test, a master key of its own, the real clamd."""
    settings.ATTACHMENT_STORAGE = "local"
    settings.ATTACHMENT_DIR = str(tmp_path / "attachments")
    settings.ATTACHMENT_KEY = ""
    settings.ATTACHMENT_KEY_FILE = tmp_path / "attachment.key"
    settings.CLAMD_ADDRESS = "{}:{}".format(*clamd_address)
    return tmp_path / "attachments"


def open_ticket(client: Any) -> str:
    res = client.post("/api/tickets", {"subject": "See the screenshot"}, format="json")
    assert res.status_code == 201, res.content
    return str(res.json()["id"])


def upload(client: Any, tid: str, data: bytes, name: str = "shot.png", **form: Any) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = {"file": SimpleUploadedFile(name, data, "application/octet-stream"), **form}
    return client.post(f"/api/tickets/{tid}/attachments", body, format="multipart")


def event_types(tid: str) -> list[str]:
    return [type(e).__name__ for e in get_application().ticket_events(UUID(tid))]


def stored(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def link(tid: str, aid: str, user: Any, ttl: int = 60) -> str:
    from django.conf import settings

    url, _ = sign_link(
        settings.SECRET_KEY, attachment_id=UUID(aid), ticket_id=UUID(tid), user_id=str(user.pk),
        ttl=ttl,
    )  # fmt: skip
    return url


def test_a_customer_uploads_a_png_it_is_scanned_clean_stored_encrypted_and_served(
    api: Any, files: Path
) -> None:
    customer, client = api("customer")
    tid = open_ticket(client)
    res = upload(client, tid, PNG, name="../Screen shot.PNG")
    assert res.status_code == 201, res.content
    body = res.json()
    assert (body["id"], body["version"], body["content_type"], body["status"]) == (
        tid,
        2,
        "image/png",
        "scanning",
    )
    assert event_types(tid) == ["TicketOpened", "AttachmentUploaded", "AttachmentScanned"]
    [blob] = stored(files)
    assert blob.name == body["attachment_id"]
    assert PNG[16:] not in blob.read_bytes()  # sealed: ciphertext at rest

    download = APIClient().get(link(tid, body["attachment_id"], customer))
    assert download.status_code == 200
    assert download.content == PNG
    assert download["Content-Type"] == "image/png"
    assert download["Content-Disposition"] == "inline; filename*=UTF-8''Screen%20shot.PNG"
    assert download["X-Content-Type-Options"] == "nosniff"

    history = client.get(f"/api/tickets/{tid}/history").json()["events"]
    uploaded, scanned = history[1], history[2]
    assert uploaded["type"] == "AttachmentUploaded"
    assert uploaded["data"]["name"] == "Screen shot.PNG"
    assert uploaded["actor"] == {"id": str(customer.pk), "role": "customer", "name": ANY}
    assert (scanned["type"], scanned["data"]["verdict"]) == ("AttachmentScanned", "clean")
    assert {k: scanned["actor"][k] for k in ("id", "role")} == {
        "id": "virus-scanner",
        "role": "system",
    }


def test_eicar_is_quarantined_and_never_served(api: Any, files: Path) -> None:
    customer, client = api("customer")
    agent, _ = api("agent")
    tid = open_ticket(client)
    res = upload(client, tid, EICAR, name="notes.txt")
    assert res.status_code == 201, res.content
    aid = res.json()["attachment_id"]
    assert res.json()["content_type"] == "text/plain"
    event = get_application().ticket_events(UUID(tid))[-1]
    assert type(event).__name__ == "AttachmentScanned"
    assert (event.verdict, event.signature) == ("infected", "eicar.txt.UNOFFICIAL")  # type: ignore[attr-defined]
    assert [p.relative_to(files).parts[0] for p in stored(files)] == ["quarantine"]
    for user in (customer, agent):
        answer = APIClient().get(link(tid, aid, user))
        assert answer.status_code == 410
        assert answer.json()["error"] == "attachment_quarantined"
        assert b"EICAR" not in answer.content


@pytest.mark.parametrize(
    ("data", "name", "form", "code", "error"),
    [
        (b"x" * 2001, "big.txt", {}, 413, "attachment_too_large"),
        (b"MZ\x90\x00" + b"\x00" * 60, "setup.png", {}, 415, "attachment_type_refused"),
        (b"<html><script>alert(1)</script>", "page.txt", {}, 415, "attachment_type_refused"),
        (b"", "empty.txt", {}, 400, "invalid"),
        (b"hello", "a.txt", {"internal": "true"}, 403, "forbidden"),
        (b"hello", "a.txt", {"message_id": "00000000-0000-4000-8000-000000000000"}, 404,
         "not_found"),
        (b"hello", "a.txt", {"message_id": "not-a-uuid"}, 400, "invalid"),
    ],
)  # fmt: skip
def test_bad_uploads_get_a_4xx_and_store_nothing(
    api: Any, files: Path, settings: Any, data: bytes, name: str, form: dict[str, str],
    code: int, error: str,
) -> None:  # fmt: skip
    settings.ATTACHMENT_MAX_BYTES = 2000
    _, client = api("customer")
    tid = open_ticket(client)
    res = upload(client, tid, data, name=name, **form)
    assert res.status_code == code, res.content
    assert res.json()["error"] == error
    assert res.json()["detail"]
    assert event_types(tid) == ["TicketOpened"]
    assert stored(files) == []


def test_no_file_field_and_a_foreign_ticket_are_refused(api: Any, files: Path) -> None:
    _, client = api("customer")
    _, other = api("customer")
    tid = open_ticket(client)
    res = client.post(f"/api/tickets/{tid}/attachments", {"internal": "false"}, format="multipart")
    assert (res.status_code, res.json()["error"]) == (400, "invalid")
    assert "file" in res.json()["fields"]
    res = upload(other, tid, b"hello", name="a.txt")
    assert (res.status_code, res.json()["error"]) == (404, "not_found")
    res = client.post(f"/api/tickets/{tid}/attachments", {"file": "x"}, format="json")
    assert res.status_code == 415  # JSON is not how files arrive
    assert event_types(tid) == ["TicketOpened"]
    assert stored(files) == []


def test_a_request_longer_than_the_limit_is_refused_from_its_length(
    api: Any, files: Path, settings: Any
) -> None:
    settings.ATTACHMENT_MAX_BYTES = 1000
    _, client = api("customer")
    tid = open_ticket(client)
    res = upload(client, tid, b"y" * 200_000, name="huge.txt")
    assert (res.status_code, res.json()["error"]) == (413, "attachment_too_large")
    assert stored(files) == []


def test_count_limit_per_ticket(api: Any, files: Path, settings: Any) -> None:
    settings.ATTACHMENTS_PER_TICKET = 1
    _, client = api("customer")
    tid = open_ticket(client)
    assert upload(client, tid, b"one", name="1.txt").status_code == 201
    res = upload(client, tid, b"two", name="2.txt")
    assert (res.status_code, res.json()["error"]) == (400, "too_many_attachments")
    assert len(stored(files)) == 1


def test_files_on_messages_follow_the_message(api: Any, files: Path) -> None:
    customer, c_client = api("customer")
    agent, a_client = api("agent")
    tid = open_ticket(c_client)
    note = a_client.post(
        f"/api/tickets/{tid}/messages", {"body": "log attached", "internal": True}, format="json"
    )
    assert note.status_code == 201
    note_id = note.json()["message_id"]  # the command names the message it added
    assert note_id == next(
        str(e.message_id)  # type: ignore[attr-defined]
        for e in get_application().ticket_events(UUID(tid))
        if type(e).__name__ == "MessagePosted"
    )
    res = upload(a_client, tid, b"stack trace", name="trace.txt", message_id=note_id)
    assert res.status_code == 201, res.content
    aid = res.json()["attachment_id"]
    event = get_application().ticket_events(UUID(tid))[-2]
    assert (event.message_id, event.internal) == (UUID(note_id), True)  # type: ignore[attr-defined]
    # The customer: not even the note exists; the agent: served.
    res = upload(c_client, tid, b"x", name="x.txt", message_id=note_id)
    assert res.status_code == 404
    assert APIClient().get(link(tid, aid, customer)).status_code == 404
    answer = APIClient().get(link(tid, aid, agent))
    assert (answer.status_code, answer.content) == (200, b"stack trace")
    assert answer["Content-Disposition"] == "attachment; filename*=UTF-8''trace.txt"
    # The customer's history leaves the internal file out, the agent's shows it.
    c_types = [e["type"] for e in c_client.get(f"/api/tickets/{tid}/history").json()["events"]]
    a_types = [e["type"] for e in a_client.get(f"/api/tickets/{tid}/history").json()["events"]]
    assert c_types == ["TicketOpened"]
    assert a_types == ["TicketOpened", "MessagePosted", "AttachmentUploaded", "AttachmentScanned"]


def test_who_may_follow_a_link(api: Any, files: Path) -> None:
    customer, client = api("customer")
    other, _ = api("customer")
    agent, _ = api("agent")
    tid = open_ticket(client)
    aid = upload(client, tid, b"invoice text", name="invoice.txt").json()["attachment_id"]
    anonymous = APIClient()
    assert anonymous.get(link(tid, aid, customer)).status_code == 200
    assert anonymous.get(link(tid, aid, agent)).status_code == 200
    # A link issued to another customer names a ticket that is not theirs: not found.
    assert anonymous.get(link(tid, aid, other)).status_code == 404
    # No link, a tampered one, an expired one: refused before anything is read.
    assert anonymous.get(f"/api/attachments/{aid}").status_code == 403
    url = link(tid, aid, customer)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = {**query, "u": str(other.pk)}
    res = anonymous.get(parts.path, forged)
    assert (res.status_code, res.json()["error"]) == (403, "link_invalid")
    res = anonymous.get(parts.path, {**query, "exp": str(int(query["exp"]) + 3600)})
    assert res.status_code == 403
    expired = link(tid, aid, customer, ttl=-1)
    res = anonymous.get(expired)
    assert (res.status_code, res.json()["error"]) == (403, "link_invalid")
    assert "expired" in res.json()["detail"]
    # A deactivated user's links stop working.
    customer.is_active = False
    customer.save()
    assert anonymous.get(link(tid, aid, customer)).status_code == 403


def test_uploads_on_s3_through_the_real_server(
    api: Any, settings: Any, tmp_path: Path, s3_endpoint: str, clamd_address: tuple[str, int]
) -> None:
    import boto3

    config = s3_settings(s3_endpoint)
    settings.ATTACHMENT_STORAGE = "s3"
    settings.S3_ENDPOINT, settings.S3_BUCKET = s3_endpoint, config.bucket
    settings.S3_REGION, settings.S3_ACCESS_KEY, settings.S3_SECRET_KEY = "us-east-1", "k", "s"
    settings.ATTACHMENT_KEY_FILE = tmp_path / "attachment.key"
    settings.CLAMD_ADDRESS = "{}:{}".format(*clamd_address)
    client_s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id="k",
        aws_secret_access_key="s",
    )  # fmt: skip
    client_s3.create_bucket(Bucket=config.bucket)
    customer, client = api("customer")
    tid = open_ticket(client)
    clean = upload(client, tid, PNG, name="shot.png").json()["attachment_id"]
    infected = upload(client, tid, EICAR, name="eicar.txt").json()["attachment_id"]
    keys = sorted(
        o["Key"] for o in client_s3.list_objects_v2(Bucket=config.bucket).get("Contents", [])
    )
    assert keys == sorted([f"attachments/{tid}/{clean}", f"quarantine/{tid}/{infected}"])
    at_rest = client_s3.get_object(Bucket=config.bucket, Key=f"attachments/{tid}/{clean}")
    assert at_rest["Body"].read()[:4] == b"DSE1"
    started = time.monotonic()
    answer = APIClient().get(link(tid, clean, customer))
    assert (answer.status_code, answer.content) == (200, PNG)
    assert time.monotonic() - started < 5
    assert APIClient().get(link(tid, infected, customer)).status_code == 410


def test_the_read_api_lists_files_with_status_and_a_link_only_once_clean(
    api: Any, files: Path
) -> None:
    customer, c_client = api("customer")
    agent, a_client = api("agent")
    tid = open_ticket(c_client)
    reply = c_client.post(f"/api/tickets/{tid}/messages", {"body": "both files"}, format="json")
    assert reply.status_code == 201
    message_id = c_client.get(f"/api/tickets/{tid}/messages").json()["results"][0]["id"]
    shot = upload(c_client, tid, PNG, name="shot.png", message_id=message_id).json()
    virus = upload(c_client, tid, EICAR, name="eicar.txt", message_id=message_id).json()
    staff_only = upload(a_client, tid, b"notes", name="n.txt", internal="true").json()

    ticket = c_client.get(f"/api/tickets/{tid}").json()
    listed = {a["name"]: a for a in ticket["attachments"]}
    assert set(listed) == {"shot.png", "eicar.txt"}  # the internal file is not the customer's
    assert listed["shot.png"]["status"] == "clean"
    assert listed["shot.png"]["message_id"] == message_id
    assert listed["shot.png"]["content_type"] == "image/png"
    assert listed["shot.png"]["size"] == len(PNG)
    assert (listed["eicar.txt"]["status"], listed["eicar.txt"]["url"]) == ("infected", None)
    served = APIClient().get(listed["shot.png"]["url"])
    assert (served.status_code, served.content) == (200, PNG)

    staff_view = a_client.get(f"/api/tickets/{tid}").json()
    assert {a["id"] for a in staff_view["attachments"]} == {
        shot["attachment_id"],
        virus["attachment_id"],
        staff_only["attachment_id"],
    }
    [message] = c_client.get(f"/api/tickets/{tid}/messages").json()["results"]
    assert [f["name"] for f in message["files"]] == ["shot.png", "eicar.txt"]
    # The link in the agent's view is the agent's own: it does not serve the customer's name.
    agent_url = next(a["url"] for a in staff_view["attachments"] if a["name"] == "n.txt")
    assert f"u={agent.pk}" in agent_url
    assert APIClient().get(agent_url).content == b"notes"
    listed_tickets = c_client.get("/api/tickets").json()["results"]
    assert [len(t["attachments"]) for t in listed_tickets if t["id"] == tid] == [2]
    assert customer.pk != agent.pk


def test_a_rebuilt_read_model_lists_the_same_files(api: Any, files: Path) -> None:
    from config.bootstrap import event_source, store
    from infra.postgres.models import TicketRecord
    from projections.runner import rebuild
    from tests.conftest import project_all

    _, client = api("customer")
    tid = open_ticket(client)
    upload(client, tid, PNG, name="a.png")
    upload(client, tid, EICAR, name="b.txt")
    project_all()
    live = TicketRecord.objects.get(id=tid).attachments
    rebuild(event_source(), store("read_models"), store("read_models").shadow,
            store("read_models").swap_in)  # fmt: skip
    assert TicketRecord.objects.get(id=tid).attachments == live
    assert [a["status"] for a in live] == ["clean", "infected"]


def test_a_file_uploaded_while_clamd_is_away_waits_then_rescan_scans_it(
    api: Any, files: Path, settings: Any, clamd_address: tuple[str, int]
) -> None:
    from django.core.management import call_command

    from tests.conftest import free_port, project_all

    settings.CLAMD_ADDRESS = f"127.0.0.1:{free_port()}"  # nothing listens there
    customer, client = api("customer")
    tid = open_ticket(client)
    aid = upload(client, tid, b"report", name="r.txt").json()["attachment_id"]
    assert event_types(tid) == ["TicketOpened", "AttachmentUploaded"]
    answer = APIClient().get(link(tid, aid, customer))
    assert (answer.status_code, answer.json()["error"]) == (409, "attachment_scanning")
    [listed] = client.get(f"/api/tickets/{tid}").json()["attachments"]
    assert (listed["status"], listed["url"]) == ("scanning", None)

    settings.CLAMD_ADDRESS = "{}:{}".format(*clamd_address)
    project_all()
    call_command("attachments", "rescan")
    assert event_types(tid)[-1] == "AttachmentScanned"
    assert APIClient().get(link(tid, aid, customer)).content == b"report"


def test_the_periodic_rescan_takes_files_left_scanning_after_a_grace_period(
    api: Any, files: Path, settings: Any, clamd_address: tuple[str, int]
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from config import bootstrap
    from processes.attachments import RESCAN_GRACE
    from tests.conftest import free_port, project_all

    settings.CLAMD_ADDRESS = f"127.0.0.1:{free_port()}"  # clamd is away during the upload
    _, client = api("customer")
    tid = open_ticket(client)
    upload(client, tid, b"report", name="r.txt")
    project_all()
    settings.CLAMD_ADDRESS = "{}:{}".format(*clamd_address)
    assert bootstrap.rescan_attachments(grace=RESCAN_GRACE) == 0  # too young: maybe scanning
    assert event_types(tid)[-1] == "AttachmentUploaded"
    later = timezone.now() + RESCAN_GRACE + timedelta(seconds=5)
    with bootstrap.overridden(clock=lambda: later):
        assert bootstrap.rescan_waiting_attachments() == 1
    assert event_types(tid)[-1] == "AttachmentScanned"
    project_all()
    assert bootstrap.rescan_attachments() == 0  # nothing waits any more
