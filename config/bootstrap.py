"""The composition root: the one place that builds the application, ports and adapters from
settings and hands them to whatever runs them (the ASGI server, the projector, relay, SLA and
outbox commands, the Celery worker).

- the event source: the event store's notification log (``infra.postgres``);
- the projection stores, and the runners that feed them from the log or from Kafka;
- real time: the ``/ws/`` application, the channel layer's publisher, presence;
- automation: the assignment manager's store and issuer, the SLA projector and check;
- notifications: the projector's store, the Celery tasks, the e-mail sender, the sweep;
- the in-process runtime of ``make run``.

What a test swaps (the clock, the e-mail sender, how assignments are issued) is a field of
``Dependencies``, set with ``overridden(...)``; nothing else is patched from outside.
Which projectors may run on Kafka: those whose result does not depend on the order of events
*across* aggregates, because Kafka keeps order only within a partition (one ticket's events):
``read_models`` and ``sla`` (ADR 0014), and ``search`` on OpenSearch (ADR 0028).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from celery.signals import task_received, worker_init, worker_process_init, worker_ready
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.routing import URLRouter
from django.conf import settings
from django.db import connection
from django.urls import path
from django.utils import timezone
from eventsourcing.persistence import Notification

from command_api import attachments, drafts
from command_api.application import close_application, get_application
from config.celery import CHECK_SLA, DRAFT, RESCAN, SCAN, SEND, SWEEP, app
from config.celery import queue_depth as celery_queue_depth
from domain.attachment import AttachmentLimits
from domain.lifecycle import Role
from domain.numbers import parse_natural
from infra.auth.models import User
from infra.auth.tokens import TokenError, authenticate_access
from infra.automation.rules import sla_rules
from infra.clamav.scanner import ClamdScanner
from infra.clickhouse import connect as analytics_connect
from infra.clickhouse import local as analytics_local
from infra.clickhouse.connect import open_database
from infra.clickhouse.embedded import DirectoryInUseError
from infra.clickhouse.store import ClickHouseProjectionStore
from infra.email.outbox import FileOutboxEmailSender
from infra.email.ports import EmailSender, FanOutEmailSender
from infra.email.smtp import SmtpEmailSender, SmtpSettings
from infra.event_metadata import decoder
from infra.llm import store as draft_store
from infra.llm.drafters import ModelDrafter, RetrievalDrafter
from infra.llm.ports import Customer, Drafter, ResolvedExample
from infra.observability import context as observability
from infra.observability import health
from infra.observability import metrics as observed
from infra.opensearch import client as os_client
from infra.opensearch import search as os_search
from infra.postgres import assignment as pg_assignment
from infra.postgres import notifications as pg_notifications
from infra.postgres import readmodels
from infra.postgres import search as pg_search
from infra.postgres import sla as pg_sla
from infra.postgres.aggregate_log import PostgresAggregateLog
from infra.postgres.assignment import PostgresAssignmentState, ProcessManagerStore
from infra.postgres.event_source import PostgresEventSource, conninfo_from_django
from infra.postgres.feed import KAFKA, LOG, FeedConflictError, FeedLeases, recorded_source
from infra.postgres.leader import PostgresLeaderLock
from infra.postgres.models import AgentRecord
from infra.postgres.projection_store import (
    PostgresAppliedVersions,
    PostgresProjectionStore,
    VersionedProjectionStore,
    log_table,
)
from infra.realtime.consumer import StreamConsumer
from infra.realtime.hub import PushHub
from infra.realtime.ports import (
    AgentCard,
    AuthenticationFailedError,
    PresenceStore,
    Principal,
    RealtimeServices,
    RealtimeSettings,
)
from infra.realtime.presence import MemoryPresenceStore, PresenceBoard
from infra.realtime.presence_redis import RedisPresenceStore
from infra.realtime.publisher import ASGIApp, ChannelsFramePublisher, ServerLoop
from infra.realtime.stats import RedisFanoutReport
from infra.server import lifecycle, worker_watchdog
from infra.storage.envelope import Envelope
from infra.storage.local import LocalDiskBlobStore
from infra.storage.ports import BlobStore
from infra.storage.s3 import S3BlobStore, S3Settings
from infra.unavailable import DATABASE_UNAVAILABLE
from processes import attachments as attachment_scans
from processes import drafts as draft_process
from processes import faults, runtime
from processes import notifications as delivery
from processes.assignment import AssignmentIssuer, Issued, deciding
from processes.notifications import notifications_state
from processes.rebuilds import RebuildPorts, Rebuilds
from processes.sla import CheckResult, RulesOnFirstUse, SlaCheck, sla_check_thread
from projections import analytics, assignment, notifications, search, sla, tickets
from projections.assignment import AssignCommand
from projections.ports import EventSource, RebuildableStore
from projections.push import PushCounters
from projections.runner import ProjectionRunner, StreamRunner
from projections.search import Principal as SearchPrincipal
from read_api.consistency import projection_position

if TYPE_CHECKING:
    from infra.kafka import relay as kafka_relay
    from infra.llm.openai_model import OpenAIChatModel

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------ dependencies
@dataclass(frozen=True)
class Dependencies:
    """What tests may swap. ``None`` means: built from settings."""

    clock: Callable[[], datetime] = timezone.now  # "now" for decisions and the SLA check
    email_sender: EmailSender | None = None
    issue_assignments: Callable[[list[AssignCommand]], Issued] | None = None


_deps = Dependencies()


@contextmanager
def overridden(**changes: Any) -> Iterator[Dependencies]:
    """Swap dependencies for the duration of the block (tests)."""
    global _deps
    names = {f.name for f in fields(Dependencies)}
    unknown = set(changes) - names
    if unknown:
        raise TypeError(f"unknown dependencies: {', '.join(sorted(unknown))}")
    before = _deps
    _deps = replace(_deps, **changes)
    try:
        yield _deps
    finally:
        _deps = before


def now() -> datetime:
    return _deps.clock()


application = get_application


# ------------------------------------------------------------------------------ event source
def event_source(*, own: bool = False) -> PostgresEventSource:
    """The log; with ``own``, a source that is also handed what this process's application
    appends and reads only the rest from the log (one reader of it: the push projector)."""
    app_ = get_application()
    return PostgresEventSource(
        app_.recorder,  # type: ignore[arg-type]
        app_.mapper,
        conninfo_from_django(settings.DATABASES["default"]),
        own=app_.watch_own_appends() if own else None,
    )


def aggregate_log() -> PostgresAggregateLog:
    app_ = get_application()
    return PostgresAggregateLog(app_.recorder, app_.mapper)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ automation
_issuer = AssignmentIssuer(get_application)
sla_check = SlaCheck(get_application, now)


def issue_assignments(commands: list[AssignCommand]) -> Issued:
    issue = _deps.issue_assignments or _issuer.issue
    return issue(commands)


def assign(command: AssignCommand) -> str:
    return _issuer.assign(command)


def check_sla(at: datetime | None = None) -> CheckResult:
    return sla_check(at)


def _assignment_state(cursor: Any, suffix: str) -> PostgresAssignmentState:
    return PostgresAssignmentState(
        cursor, suffix, deciding=lambda: deciding(settings.AUTO_ASSIGN, now)
    )


def _sla_state(cursor: Any, suffix: str) -> pg_sla.PostgresSlaState:
    return pg_sla.PostgresSlaState(cursor, suffix, rules=RulesOnFirstUse())


# ------------------------------------------------------------------------------ notifications
@app.task(name=SEND)
def send_notification_email(outbox_id: int) -> str:
    """Send the e-mail of one outbox row, unless it was sent already (or is being sent).
    Its log lines carry the correlation id of the event the e-mail is about."""
    position = pg_notifications.outbox_position(outbox_id)
    ids = event_metadata_at(position) if position is not None else {}
    with observability.bound(request=ids.get("request_id"), correlation=ids.get("correlation_id")):
        outcome = deliver(outbox_id)
        log.info("e-mail %s: %s", outbox_id, outcome, extra={"outbox_id": outbox_id})
        return outcome


@worker_init.connect
def _worker_metrics(**_: Any) -> None:
    observed.serve_if_configured()  # a Celery worker's own port (DESKSTREAM_METRICS_PORT)
    worker_watchdog.dump_stacks_on_signal()


@worker_process_init.connect
def _pool_process(**_: Any) -> None:
    worker_watchdog.dump_stacks_on_signal()  # a pool process too: where is its task stuck?


_watchdog: worker_watchdog.Watchdog | None = None


@worker_ready.connect
def _watch_the_consumer(sender: Any = None, **_: Any) -> None:
    """A worker whose consumer stopped after losing the broker stops too, to be started
    again (``infra.server.worker_watchdog``; DESKSTREAM_WORKER_STALL_SECONDS, 0: off)."""
    global _watchdog
    stall = settings.WORKER_STALL_SECONDS
    if stall <= 0 or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    queues = sorted(app.amqp.queues.consume_from or [settings.CELERY_TASK_DEFAULT_QUEUE])
    _watchdog = worker_watchdog.Watchdog(
        lambda: celery_queue_depth(queues), worker_watchdog.worker_busy, stall=stall
    )
    worker_watchdog.watch(_watchdog, interval=min(stall / 4, 15.0), stop=threading.Event())


@task_received.connect
def _consuming(**_: Any) -> None:
    if _watchdog is not None:
        _watchdog.received()


@app.task(name=SWEEP)
def sweep_notification_outbox() -> int:
    """Enqueue the outbox rows that are due (never enqueued, or waiting for a retry)."""
    return sweep()


@app.task(name=CHECK_SLA)
def check_sla_task() -> int:
    """Record the SLA breaches due now (``manage.py sla check``, on Celery beat); returns how
    many were recorded."""
    return check_sla().recorded


def email_sender() -> EmailSender:
    if _deps.email_sender is not None:
        return _deps.email_sender
    senders: list[EmailSender] = []
    if settings.EMAIL_OUTBOX:
        senders.append(FileOutboxEmailSender(settings.EMAIL_OUTBOX_DIR))
    if settings.SMTP_HOST:
        senders.append(
            SmtpEmailSender(
                SmtpSettings(
                    host=settings.SMTP_HOST,
                    port=settings.SMTP_PORT,
                    user=settings.SMTP_USER,
                    password=settings.SMTP_PASSWORD,
                    tls=settings.SMTP_TLS,
                )
            )
        )
    return FanOutEmailSender(senders)


def send_email_later(outbox_id: int) -> object:
    """To the worker; with none (eager tasks), to this process's e-mail thread unless
    ``EMAILS_IN_THREADS`` is off. Whatever is queued there when the process ends stays
    pending, and the sweep enqueues it again (the claim keeps it from going twice)."""
    if app.conf.task_always_eager and settings.EMAILS_IN_THREADS:
        with _emails_queued_lock:
            _emails_queued[0] += 1
        try:
            return _email_thread().submit(_email_in_thread, outbox_id)
        except RuntimeError:  # the process is ending: the row stays pending for the sweep
            with _emails_queued_lock:
                _emails_queued[0] -= 1
            raise
    return send_notification_email.delay(outbox_id)


_emails_queued = [0]  # handed to the e-mail thread and not done yet
_emails_queued_lock = threading.Lock()


def emails_waiting() -> int | None:
    """The e-mail tasks waiting to run: in the broker's queue, or this process's e-mail
    thread (eager tasks run where they are enqueued: none wait). None: the broker does not
    answer."""
    if not app.conf.task_always_eager:
        return celery_queue_depth()
    with _emails_queued_lock:
        return _emails_queued[0] if settings.EMAILS_IN_THREADS else 0


@functools.cache
def _email_thread() -> ThreadPoolExecutor:
    # One: e-mails go out in the order they were written, as one worker sends them.
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="email")


def _email_in_thread(outbox_id: int) -> None:
    try:
        send_notification_email(outbox_id)  # the task's body, as an eager call runs it
    except Exception:
        log.exception("sending e-mail %s failed; the sweep will try it again", outbox_id)
    finally:
        with _emails_queued_lock:
            _emails_queued[0] -= 1
        connection.close()  # this thread's own connection (back to the pool)


enqueue = delivery.enqueue_each(send_email_later)


def deliver(outbox_id: int, sender: EmailSender | None = None) -> str:
    return delivery.deliver(outbox_id, sender or email_sender())


def sweep(
    *,
    at: Any = None,
    batch: int = delivery.SWEEP_BATCH,
    waiting: Callable[[], int | None] | None = None,
) -> int:
    return delivery.sweep(enqueue, at=at, batch=batch, waiting=waiting or emails_waiting)


def _notifications_state(cursor: Any, suffix: str) -> pg_notifications.PostgresNotificationsState:
    return notifications_state(cursor, suffix, enqueue=enqueue)


# ------------------------------------------------------------------------------ search
def opensearch_enabled() -> bool:
    return bool(settings.SEARCH_BACKEND == "opensearch")


_opensearch: dict[tuple[str, float], Any] = {}


def opensearch_client() -> Any:
    """The OpenSearch client of this process for the configured URL (connects lazily)."""
    if not settings.OPENSEARCH_URL:
        raise KeyError("Set DESKSTREAM_OPENSEARCH_URL (http://host:port of OpenSearch).")
    key = (str(settings.OPENSEARCH_URL), float(settings.OPENSEARCH_TIMEOUT))
    if key not in _opensearch:
        _opensearch[key] = os_client.client(key[0], timeout=key[1])
    return _opensearch[key]


def customer_info(customer_ids: Sequence[str]) -> dict[str, search.CustomerInfo]:
    """Customers' searchable metadata, from the accounts (ids of other shapes have none)."""
    numeric = [n for n in map(parse_natural, customer_ids) if n is not None]
    found: dict[str, search.CustomerInfo] = {}
    for user in User.objects.filter(pk__in=numeric).select_related("customer_profile"):
        profile = getattr(user, "customer_profile", None)
        name = f"{user.first_name} {user.last_name}".strip() or user.email
        found[str(user.pk)] = search.CustomerInfo(
            name,
            user.email,
            profile.company if profile else "",
            profile.phone if profile else "",
        )
    return found


def events_table() -> str:
    """The event store's table: the notification log the frontiers are counted on."""
    return log_table(get_application().recorder)  # type: ignore[arg-type]


def opensearch_store(*, stream: bool = False) -> os_search.OpenSearchSearchStore:
    return os_search.OpenSearchSearchStore(
        opensearch_client(),
        settings.OPENSEARCH_INDEX,
        customer_info,
        refresh=settings.OPENSEARCH_REFRESH,
        stream=stream,
        # From Kafka: the applied versions beside the event store, for the frontier.
        versions=PostgresAppliedVersions(events_table()) if stream else None,
    )


def search_index() -> search.SearchIndex:
    """What ``GET /api/search`` and ``/similar`` ask: the backend the settings choose."""
    if opensearch_enabled():
        return os_search.OpenSearchSearchIndex(opensearch_client(), settings.OPENSEARCH_INDEX)
    return pg_search.PostgresSearchIndex()


def search_position(name: str) -> int:
    """The search projection's position, wherever it is stored (for ``?after=``)."""
    if opensearch_enabled():
        return opensearch_store().position()
    return projection_position(name)


# ------------------------------------------------------------------------------ attachments
def blob_store() -> BlobStore:
    """Where the sealed files live: the local disk (the embedded default) or S3."""
    if settings.ATTACHMENT_STORAGE == "s3":
        return _s3_store(
            S3Settings(
                bucket=settings.S3_BUCKET,
                endpoint_url=settings.S3_ENDPOINT,
                region=settings.S3_REGION,
                access_key=settings.S3_ACCESS_KEY,
                secret_key=settings.S3_SECRET_KEY,
                prefix=settings.S3_PREFIX,
            )
        )
    return LocalDiskBlobStore(settings.ATTACHMENT_DIR)


@functools.lru_cache(maxsize=4)
def _s3_store(config: S3Settings) -> S3BlobStore:
    return S3BlobStore(config)  # one client (and its connection pool) per configuration


def master_key() -> bytes:
    """``DESKSTREAM_ATTACHMENT_KEY`` (32 bytes, base64), else ``var/attachment.key``, made
    once with a random key (readable by its owner only) and kept."""
    if settings.ATTACHMENT_KEY:
        key = base64.b64decode(settings.ATTACHMENT_KEY, validate=True)
    else:
        key = _key_file(Path(settings.ATTACHMENT_KEY_FILE))
    if len(key) != 32:
        raise RuntimeError("DESKSTREAM_ATTACHMENT_KEY must be 32 bytes, base64-encoded.")
    return key


def _key_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    return base64.b64decode(path.read_text().strip(), validate=True)


def attachment_ports() -> attachments.AttachmentPorts:
    return attachments.AttachmentPorts(
        files=blob_store(),
        envelope=Envelope(master_key()),
        limits=attachment_limits(),
        scan_later=enqueue_scan,
    )


def attachment_limits() -> AttachmentLimits:
    return AttachmentLimits(
        max_bytes=settings.ATTACHMENT_MAX_BYTES,
        per_message=settings.ATTACHMENTS_PER_MESSAGE,
        per_ticket=settings.ATTACHMENTS_PER_TICKET,
        content_types=frozenset(settings.ATTACHMENT_TYPES),
    )


def scanner() -> ClamdScanner | None:
    if not settings.CLAMD_ADDRESS:
        return None
    host, _, port = settings.CLAMD_ADDRESS.rpartition(":")
    return ClamdScanner(host or "127.0.0.1", int(port), timeout=settings.CLAMD_TIMEOUT)


@app.task(name=SCAN)
def scan_attachment(ticket_id: str, attachment_id: str) -> str:
    """Scan one uploaded file and record the verdict (nothing if it was scanned before)."""
    return attachment_scans.scan(
        get_application(), attachment_ports(), scanner(), UUID(ticket_id), UUID(attachment_id)
    )


def enqueue_scan(ticket_id: UUID, attachment_id: UUID) -> None:
    scan_attachment.delay(str(ticket_id), str(attachment_id))


def rescan_attachments(*, grace: timedelta | None = None) -> int:
    """Enqueue the scan of every file still waiting for one (clamd was away, or a crash came
    between the upload and its enqueue); with ``grace``, only of files older than that."""
    before = None if grace is None else now() - grace
    return attachment_scans.rescan(readmodels.pending_scans(before), enqueue_scan)


@app.task(name=RESCAN)
def rescan_waiting_attachments() -> int:
    """Celery beat's periodic rescan (files still scanning a minute after their upload)."""
    return rescan_attachments(grace=attachment_scans.RESCAN_GRACE)


# ------------------------------------------------------------------------------ AI drafts
SIMILAR_CANDIDATES = 10  # similar tickets looked at for resolved ones (most are)


def draft_model_name() -> str:
    """The model drafts use: the admin's choice, else ``DESKSTREAM_LLM_MODEL``."""
    return str(draft_store.current()["model"] or settings.LLM_MODEL)


@functools.lru_cache(maxsize=4)
def _chat_model(
    base_url: str, model: str, timeout: float, retries: int, max_tokens: int, moderation: bool
) -> OpenAIChatModel:
    # Imported here, when a model is configured and a draft asked for: the openai client
    # (~600 modules, ~22 MB) is otherwise loaded by every process, idle ones included.
    from infra.llm.openai_model import OpenAIChatModel

    return OpenAIChatModel(  # one client (and its connection pool) per configuration
        base_url=base_url,
        model=model,
        api_key=settings.LLM_API_KEY,
        timeout=timeout,
        max_retries=retries,
        max_tokens=max_tokens,
        moderation=moderation,
    )


def drafter() -> Drafter:
    """A model when one is configured (base URL and model), else retrieval."""
    model = draft_model_name()
    if settings.LLM_BASE_URL and model:
        return ModelDrafter(
            _chat_model(
                settings.LLM_BASE_URL,
                model,
                settings.LLM_TIMEOUT,
                settings.LLM_MAX_RETRIES,
                settings.LLM_MAX_TOKENS,
                settings.LLM_MODERATION,
            )
        )
    return RetrievalDrafter()


def draft_source() -> tuple[str, str]:
    chosen = drafter()
    return chosen.source, chosen.model


def draft_customer(customer_id: str) -> Customer:
    info = customer_info([customer_id]).get(customer_id)
    if info is None:
        return Customer(name="")
    return Customer(info.name, info.company, info.email, info.phone)


def agent_name(user_id: str) -> str:
    user = User.objects.filter(pk=parse_natural(user_id) or 0).first()
    return user.display_name if user else ""


def similar_examples(ticket_id: UUID, limit: int) -> list[ResolvedExample]:
    """The replies that resolved the tickets most similar to this one, best first."""
    hits = search_index().similar(
        ticket_id, SearchPrincipal(Role.AGENT, "drafts"), SIMILAR_CANDIDATES
    )
    order = [hit.ticket_id for hit in hits if hit.ticket_id is not None]
    replies = readmodels.resolving_replies(order)
    names = customer_info([replies[t][1] for t in order if t in replies])
    examples = []
    for tid in order:
        if tid in replies:
            subject, customer_id, reply = replies[tid]
            name = names[customer_id].name if customer_id in names else ""
            examples.append(ResolvedExample(tid, subject, reply, name))
    return examples[:limit]


def publish_draft(user_id: str, ticket_id: UUID, frame: dict[str, Any]) -> None:
    publisher().send_draft(user_id, ticket_id, frame)


def draft_price(model: str) -> tuple[float, float]:
    if model == draft_model_name() and settings.LLM_BASE_URL:
        return settings.LLM_PRICE_INPUT, settings.LLM_PRICE_OUTPUT
    return 0.0, 0.0  # retrieval (or a model whose price is not configured)


def draft_services() -> draft_process.DraftServices:
    return draft_process.DraftServices(
        drafter=drafter,
        customer=draft_customer,
        agent_name=agent_name,
        similar=similar_examples,
        publish=publish_draft,
        price=draft_price,
        allowed_contacts=(settings.EMAIL_FROM,),
    )


@app.task(name=DRAFT)
def generate_draft(ticket_id: str, draft_id: str) -> str:
    """Write, check, stream and record one requested draft (nothing if it was recorded)."""
    try:
        return draft_process.generate(
            get_application(), draft_services(), UUID(ticket_id), UUID(draft_id)
        )
    finally:
        if not app.conf.task_always_eager:
            connection.close()


def enqueue_draft(ticket_id: UUID, draft_id: UUID) -> None:
    """To the worker; with none (eager tasks), to a thread of this process unless
    ``DRAFTS_IN_THREADS`` is off: the request answers before a model has written a word."""
    if app.conf.task_always_eager and settings.DRAFTS_IN_THREADS:
        _draft_threads().submit(_draft_in_thread, str(ticket_id), str(draft_id))
        return
    generate_draft.delay(str(ticket_id), str(draft_id))


@functools.cache
def _draft_threads() -> ThreadPoolExecutor:
    # Two at a time: a model's answer is mostly waiting; more would only queue at its limits.
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="draft")


def _draft_in_thread(ticket_id: str, draft_id: str) -> None:
    try:
        generate_draft(ticket_id, draft_id)  # the task's body, as an eager call runs it
    except Exception:
        log.exception("writing draft %s of ticket %s failed", draft_id, ticket_id)
    finally:
        connection.close()  # this thread's own connection


def draft_ports() -> drafts.DraftPorts:
    return drafts.DraftPorts(generate_later=enqueue_draft, source=draft_source)


# ------------------------------------------------------------------------------ projectors
def _search_store() -> Any:
    if opensearch_enabled():
        return opensearch_store()
    return PostgresProjectionStore(
        search.NAME,
        tables=pg_search.TABLES,
        deferred_indexes=pg_search.DEFERRED_INDEXES,
        state_factory=pg_search.PostgresSearchState,
        handler=pg_search.handler,
    )


STORES: dict[str, Callable[[], PostgresProjectionStore]] = {
    tickets.NAME: lambda: PostgresProjectionStore(
        tickets.NAME,
        tables=readmodels.TABLES,
        deferred_indexes=readmodels.DEFERRED_INDEXES,
        state_factory=readmodels.PostgresTicketsState,
        handler=readmodels.handler,
    ),
    # PostgreSQL, or OpenSearch (DESKSTREAM_SEARCH_BACKEND): the same runner and rebuild.
    search.NAME: _search_store,
    notifications.NAME: lambda: PostgresProjectionStore(
        notifications.NAME,
        tables=pg_notifications.TABLES,
        state_factory=_notifications_state,
        handler=pg_notifications.handler,
    ),
    # The assignment process manager decides and issues commands after its live batches
    # (never when rebuilt); the SLA projector only projects (the check records breaches).
    assignment.NAME: lambda: ProcessManagerStore(
        assignment.NAME,
        tables=pg_assignment.TABLES,
        state_factory=_assignment_state,
        handler=pg_assignment.handler,
        issue=issue_assignments,
    ),
    sla.NAME: lambda: PostgresProjectionStore(
        sla.NAME, tables=pg_sla.TABLES, state_factory=_sla_state, handler=pg_sla.handler
    ),
}


def store(name: str) -> PostgresProjectionStore:
    try:
        return STORES[name]()
    except KeyError:
        raise KeyError(f"Unknown projector {name!r}; known: {', '.join(sorted(STORES))}") from None


# ------------------------------------------------------------------------------ analytics
# Not in STORES (those are PostgreSQL's): its tables are ClickHouse's, a server or chDB.
ANALYTICS = analytics.NAME
PROJECTORS = (*STORES, ANALYTICS)  # every projector ``manage.py projector`` runs


def analytics_store() -> ClickHouseProjectionStore:
    """The analytics projection, in the database the settings name (ADR 0030)."""
    return ClickHouseProjectionStore(
        open_database(settings.CLICKHOUSE_URL, settings.ANALYTICS_PATH),
        calendar=lambda: sla_rules().calendar(),  # business time: the SLA calendar in force
    )


def close_analytics() -> None:
    """Close this process's analytics connections (chDB's engine: before interpreter teardown,
    which races its threads; every command that opened it calls this)."""
    analytics_connect.close()


def analytics_here() -> bool:
    """Whether the analytics projector runs beside the other projectors of this process's
    runtime: wherever they run, on chDB too (ADR 0035: under ``make run`` the projector
    process owns the directory and serves the web server's reads on ``analytics_socket``)."""
    return bool(settings.ANALYTICS)


def analytics_socket() -> Path:
    """Where the process that owns chDB answers the other processes' reads (ADR 0035)."""
    return Path(settings.ANALYTICS_SOCKET or f"{settings.ANALYTICS_PATH.rstrip('/')}.sock")


def projection_store(name: str) -> RebuildableStore:
    """Any projector's store (``store`` for PostgreSQL's, ``analytics_store`` for analytics)."""
    return analytics_store() if name == ANALYTICS else store(name)


def runner(name: str, source: EventSource | None = None) -> ProjectionRunner:
    projection = projection_store(name)
    crash_after = faults.from_env("DESKSTREAM_FAULT_CRASH_AFTER")
    if crash_after and isinstance(projection, PostgresProjectionStore):
        faults.crash_projector_after(projection, crash_after)
    batch_size, interval = pace(name)
    return ProjectionRunner(
        source or event_source(), projection, batch_size=batch_size, interval=interval, name=name
    )


def pace(name: str) -> tuple[int, float]:
    """A live projector's batch size and least seconds between its batches: analytics in few
    large batches (ClickHouse's inserts, and chDB's work in the web server, ADR 0035), the
    others in small frequent ones (their reads wait for them, ADR 0022)."""
    if name == ANALYTICS:
        return settings.ANALYTICS_BATCH_SIZE, settings.ANALYTICS_INTERVAL_MS / 1000
    return settings.PROJECTION_BATCH_SIZE, settings.PROJECTION_INTERVAL_MS / 1000


# ------------------------------------------------------------------------------ Kafka
KAFKA_PROJECTORS_ALWAYS = (tickets.NAME, sla.NAME, analytics.NAME)


def kafka_projectors() -> tuple[str, ...]:
    """``search`` too when it is on OpenSearch: its documents are versioned by ticket, so it
    needs no order across tickets (ADR 0028)."""
    return KAFKA_PROJECTORS_ALWAYS + ((search.NAME,) if opensearch_enabled() else ())


KAFKA_PROJECTORS = KAFKA_PROJECTORS_ALWAYS  # those that run on Kafka with either backend


class KafkaNotConfiguredError(RuntimeError):
    pass


def kafka_bootstrap() -> str:
    if not settings.KAFKA_BOOTSTRAP:
        raise KafkaNotConfiguredError("Set DESKSTREAM_KAFKA_BOOTSTRAP (host:port of a broker).")
    return str(settings.KAFKA_BOOTSTRAP)


def ensure_topic() -> bool:
    from infra.kafka import relay as kafka_relay  # kafka-python only where Kafka is used

    return kafka_relay.ensure_topic(
        kafka_bootstrap(),
        settings.KAFKA_TOPIC,
        settings.KAFKA_PARTITIONS,
        settings.KAFKA_REPLICATION,
    )


def relay() -> kafka_relay.KafkaRelay:
    from infra.kafka import relay as kafka_relay  # kafka-python only where Kafka is used

    recorder = get_application().recorder
    log_source = event_source()

    def read(after: int, limit: int) -> Sequence[Notification]:
        return recorder.select_notifications(start=after, limit=limit, inclusive_of_start=False)

    crash_after = faults.from_env("DESKSTREAM_FAULT_RELAY_CRASH_AFTER")
    return kafka_relay.KafkaRelay(
        functools.partial(kafka_relay.producer, kafka_bootstrap()),
        settings.KAFKA_TOPIC,
        read,
        log_source.wait,
        batch_size=settings.RELAY_BATCH_SIZE,
        flush_timeout=settings.RELAY_SEND_TIMEOUT,
        after_publish=faults.crash_relay_after(crash_after) if crash_after else None,
    )


def kafka_store(name: str) -> Any:
    """The store a Kafka member of ``name`` writes: the versioned PostgreSQL store, or the
    OpenSearch store for search on OpenSearch (two kinds, hence ``Any``)."""
    if name not in kafka_projectors():
        raise KeyError(
            f"{name!r} cannot run on Kafka (it needs the global order); "
            f"these can: {', '.join(kafka_projectors())}"
        )
    if name == ANALYTICS:
        return analytics_store()  # exactly once by ticket version, from whatever source
    if name == search.NAME:
        return opensearch_store(stream=True)
    return VersionedProjectionStore.like(store(name), events_table())


def group_id(name: str) -> str:
    return f"{settings.KAFKA_GROUP_PREFIX}{name}"


def kafka_runner(name: str) -> StreamRunner:
    projection = kafka_store(name)
    crash_after = faults.from_env("DESKSTREAM_FAULT_CRASH_AFTER")
    if crash_after and isinstance(projection, PostgresProjectionStore):
        faults.crash_projector_after(projection, crash_after)
    from kafka.errors import KafkaError

    from infra.kafka import source as kafka_source  # kafka-python only where Kafka is used

    # A member that starts before the relay creates the topic with the configured partition
    # count (ADR 0014) before it subscribes: a subscription to a missing topic has some
    # brokers (Tansu) create it with their own default count. Broker away: the relay
    # creates it later.
    try:
        ensure_topic()
    except KafkaError:
        log.warning("%s: could not make sure the topic exists; waiting for it", name,
                    exc_info=True)  # fmt: skip
    consumer = kafka_source.consumer(
        kafka_bootstrap(),
        settings.KAFKA_TOPIC,
        group_id(name),
        session_timeout_ms=settings.KAFKA_SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=settings.KAFKA_HEARTBEAT_MS,
        assignor=settings.KAFKA_ASSIGNOR,
        max_poll_records=settings.PROJECTION_BATCH_SIZE,
    )
    source = kafka_source.KafkaStreamSource(consumer, get_application().mapper)
    return StreamRunner(source, projection, batch_size=settings.PROJECTION_BATCH_SIZE, name=name)


# ------------------------------------------------------------------------------ real time
server_loop = ServerLoop()
# This process's sockets by push group (ADR 0051): with an elected publisher it reads the
# publisher's batches from Redis; else this process's own push projector hands them over.
push_hub = PushHub(listen=bool(settings.REDIS_URL) and settings.PUSH_FANOUT == "leader")


def presence_store() -> PresenceStore:
    """Redis whenever the channel layer is Redis (several server processes may share it),
    else this process's own count (the embedded mode serves from one process)."""
    if not settings.REDIS_URL:
        return MemoryPresenceStore()
    return RedisPresenceStore(
        settings.REDIS_URL,
        prefix=f"{settings.CHANNELS_PREFIX}presence:",
        ttl=settings.PRESENCE_TTL,
        heartbeat_interval=settings.PRESENCE_HEARTBEAT,
    )


presence = PresenceBoard(presence_store())
_services: RealtimeServices | None = None
_services_lock = threading.Lock()


def realtime_settings() -> RealtimeSettings:
    return RealtimeSettings(
        sync_interval=settings.REALTIME_SYNC_INTERVAL,
        silence_timeout=settings.REALTIME_SILENCE_TIMEOUT,
        auth_timeout=settings.REALTIME_AUTH_TIMEOUT,
        reauth_interval=settings.REALTIME_REAUTH_INTERVAL,
        typing_interval=settings.REALTIME_TYPING_INTERVAL,
        max_replay=settings.REALTIME_MAX_REPLAY,
        max_subscriptions=settings.REALTIME_MAX_SUBSCRIPTIONS,
    )


def authenticate(token: str) -> Principal:
    """The socket's user; runs in a worker thread, so it hands its connection back."""
    try:
        user, claims = authenticate_access(token)
        return Principal(str(user.pk), str(user.role), user.display_name, float(claims["exp"]))
    except TokenError as err:
        raise AuthenticationFailedError(err.code, err.detail) from None
    finally:
        connection.close()


def agents() -> Sequence[AgentCard]:
    try:
        return [
            AgentCard(row.user_id, row.name, row.availability)
            for row in AgentRecord.objects.order_by("name")
        ]
    finally:
        connection.close()


def realtime_services() -> RealtimeServices:
    global _services
    if _services is None:
        with _services_lock:
            if _services is None:
                _services = RealtimeServices(
                    authenticate=authenticate,
                    source=event_source(),
                    log=aggregate_log(),
                    agents=agents,
                    settings=realtime_settings(),
                )
    return _services


def websocket_application() -> ASGIApp:
    """The WebSocket side of ``config.asgi``: one endpoint, ``/ws/``."""
    consumer = StreamConsumer.as_asgi(services=realtime_services(), presence=presence, hub=push_hub)
    return URLRouter([path("ws/", consumer)])  # type: ignore[no-any-return]


def publisher() -> ChannelsFramePublisher:
    """To this process's sockets (the in-memory layer; Redis with ``local`` fan-out), or to
    every process's through Redis (the elected ``leader``), ADR 0044."""
    layer: Any = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer) or settings.PUSH_FANOUT == "local":
        return ChannelsFramePublisher(layer, server_loop, hub=push_hub, local=True)
    return ChannelsFramePublisher(layer)


def push_leader() -> PostgresLeaderLock | None:
    """The lock that elects the one push publisher of the processes sharing Redis and the
    channel prefix (``leader`` fan-out); None: this process publishes to its own sockets."""
    if not settings.REDIS_URL or settings.PUSH_FANOUT != "leader":
        return None
    return PostgresLeaderLock(
        conninfo_from_django(settings.DATABASES["default"]),
        f"{settings.REDIS_URL} {settings.CHANNELS_PREFIX}push",
    )


push_counters = PushCounters()


def push_thread(stop: threading.Event) -> threading.Thread:
    return runtime.push_thread(
        stop,
        source=lambda: event_source(own=True),
        frames=publisher,
        aggregate_log=aggregate_log,
        sync_interval=settings.REALTIME_SYNC_INTERVAL,
        batch_size=settings.PROJECTION_BATCH_SIZE,
        leader=push_leader(),
        failover_interval=settings.PUSH_FAILOVER,
        counters=push_counters,
    )


class PushMetrics:
    """This process's fan-out counters, added to the Prometheus counters (``/metrics``) and,
    with Redis, written to ``<prefix>push:stats:<process>`` for the cluster-wide view."""

    def __init__(self) -> None:
        self.stats = realtime_services().stats
        self.report = (
            RedisFanoutReport(settings.REDIS_URL, settings.CHANNELS_PREFIX)
            if settings.REDIS_URL
            else None
        )
        self._seen = (0, 0, 0, 0)

    def tick(self) -> None:
        now = (
            push_counters.events,
            push_counters.published,
            self.stats.delivered,
            self.stats.duplicates,
        )
        counters = (
            observed.PUSH_EVENTS,
            observed.PUSH_PUBLISHED,
            observed.PUSH_DELIVERED,
            observed.PUSH_COPIES,
        )
        for counter, value, seen in zip(counters, now, self._seen, strict=True):
            if value > seen:
                counter.inc(value - seen)
        self._seen = now
        if self.report is not None:
            self.report.report(push_counters, self.stats, mode=settings.PUSH_FANOUT)


def push_threads(stop: threading.Event) -> list[threading.Thread]:
    """The push projector, and the report of this process's fan-out counters."""
    report = PushMetrics()
    return [
        push_thread(stop),
        runtime.ticker_thread(
            stop, report.tick, settings.REALTIME_SYNC_INTERVAL, "push-fanout-report"
        ),
    ]


# ------------------------------------------------------------------------------ runtime
in_process = runtime.InProcess()


def start_push_in_process(stop: threading.Event) -> None:
    """The push projector alone, in a thread of this process (the web server's, beside the
    projector process); ``close`` stops it before the event store closes. On chDB, this
    process reads analytics through the projector process's socket (ADR 0035)."""
    if settings.ANALYTICS and not settings.CLICKHOUSE_URL:
        analytics_connect.read_through(analytics_socket())
    in_process.add(stop, push_threads(stop))


def end_sockets(user_id: str) -> None:
    """Close every WebSocket ``user_id`` holds, in every process (its sessions ended)."""
    publisher().end_sessions(user_id)


def feed_leases(label: str) -> FeedLeases:
    """This process's leases on the projections it feeds (``label`` says what it is)."""
    return FeedLeases(conninfo_from_django(settings.DATABASES["default"]), label)


_leases: list[FeedLeases] = []


def claim_log_feeds(
    label: str, wanted: Sequence[str], *, leases: FeedLeases | None = None
) -> list[str]:
    """The projectors of ``wanted`` this process may feed from the log: each one whose lease
    it got. The others are fed from Kafka (recorded, or a consumer is running): they are left
    out with a warning that says why and what to do (infra/postgres/feed.py). While the
    database is unavailable (down, or the leases' connection dropped) it waits and claims
    them all again: the leases held went with the session (issue 22: a projector process
    started during a connection cut exited here)."""
    if leases is None:
        leases = feed_leases(label)
        _leases.append(leases)
    delay = 0.5
    while True:
        try:
            return _claim_each(leases, wanted)
        except DATABASE_UNAVAILABLE as error:
            leases.close()
            log.warning("claiming the log feeds: %s; retrying in %.1f s", error, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _claim_each(leases: FeedLeases, wanted: Sequence[str]) -> list[str]:
    names = []
    for name in wanted:
        try:
            leases.claim(name, LOG)
        except FeedConflictError as error:
            log.warning("not running projector %s here: %s", name, error)
            continue
        names.append(name)
    return names


def start_in_process(
    stop: threading.Event, *, push: bool = True, label: str = "web server projectors"
) -> list[threading.Thread]:
    """Every projector in a thread of this process (the embedded mode), with the push
    projector too unless ``push`` is off (``manage.py projector run-all`` leaves it to the
    web server), the e-mail sweeper and the SLA check (this mode has no Celery beat).
    Projectors fed from Kafka are left out (``claim_log_feeds``)."""
    wanted = list(STORES)
    if analytics_here():
        wanted.append(ANALYTICS)
    names = claim_log_feeds(label, wanted)
    threads = runtime.projector_threads(
        stop,
        upstream=event_source(),
        names=names,
        runner=runner,
        batch_size=settings.PROJECTION_BATCH_SIZE,
        interval=settings.PROJECTION_INTERVAL_MS / 1000,
        # chDB's work on a shared 2-core machine: after the requests and PostgreSQL.
        background=[ANALYTICS] if not settings.CLICKHOUSE_URL else [],
    )
    if ANALYTICS in names and not settings.CLICKHOUSE_URL and not push:
        # The projector process owns chDB: it answers the web server's reads (ADR 0035).
        threads.append(
            analytics_local.serve_thread(stop, analytics_socket(), Path(settings.ANALYTICS_PATH))
        )
    if push:  # the push projector (WebSocket frames) has no tables, so it is not in STORES
        threads += push_threads(stop)
    threads.append(delivery.sweeper_thread(sweep, settings.OUTBOX_SWEEP_INTERVAL, stop))
    if settings.CLAMD_ADDRESS:  # without a scanner, waiting files have nothing to wait for
        threads.append(
            attachment_scans.rescan_thread(
                lambda: rescan_attachments(grace=attachment_scans.RESCAN_GRACE),
                settings.ATTACHMENT_RESCAN_INTERVAL,
                stop,
            )
        )
    threads.append(sla_check_thread(check_sla, settings.SLA_CHECK_INTERVAL, stop))
    in_process.add(stop, threads)
    return threads


# ------------------------------------------------------------------------------ operations
def event_metadata_at(position: int) -> dict[str, str]:
    """The metadata of the event at ``position`` (``{}`` if none, or none is there)."""
    app_ = get_application()
    found = app_.recorder.select_notifications(start=position, limit=1)
    if not found or found[0].id != position:
        return {}
    return dict(decoder(app_.mapper)(found[0])[1])


def projector_positions() -> dict[str, Callable[[], int]]:
    """How to read each projector's position that runs in this deployment: the PostgreSQL
    ones always, analytics when it is on."""
    positions: dict[str, Callable[[], int]] = {
        name: functools.partial(lambda n: store(n).position(), name) for name in STORES
    }
    if analytics_here():
        positions[ANALYTICS] = analytics_position
    return positions


def analytics_position() -> int:
    """The analytics projection's position, read as the dashboard reads (``reader``): on
    chDB, in ``make run``'s web server, through the owner's socket (ADR 0035). Opening the
    store here would take the chDB directory from the projector process that owns it (a
    ``/readyz`` before that process had opened it did, and stopped its analytics)."""
    return analytics_connect.reader(settings.CLICKHOUSE_URL, settings.ANALYTICS_PATH).position()


def _database_answers() -> None:
    with connection.cursor() as cur:
        cur.execute("SELECT 1")


def readiness() -> health.Readiness:
    return health.readiness(
        _database_answers,
        lambda: event_source().head(),
        projector_positions(),
        settings.READY_MAX_LAG,
    )


def celery_queue_waiting() -> dict[str, int]:
    """The metric's sample: tasks waiting in the default queue; none without a broker or
    while it does not answer."""
    if app.conf.task_always_eager:
        return {}
    depth = celery_queue_depth()
    return {} if depth is None else {settings.CELERY_TASK_DEFAULT_QUEUE: depth}


def serve_metrics() -> None:
    """The scrape-time gauges of this web process's ``GET /metrics`` (``config/urls.py``)."""
    observed.add_source(
        "projectors", lambda: health.projector_gauges(event_source().head, projector_positions())
    )
    observed.add_source(
        "outbox",
        lambda: [
            health.counts_gauge(
                "deskstream_email_outbox_depth",
                "E-mails in the outbox not sent: pending (to send or retry) and failed.",
                "status",
                pg_notifications.outbox_depth(),
            )
        ],
    )
    observed.add_source(
        "celery",
        lambda: [
            health.counts_gauge(
                "deskstream_celery_queue_depth",
                "Tasks waiting in the Celery broker's queue.",
                "queue",
                celery_queue_waiting(),
            )
        ],
    )


def close() -> None:
    """Stop the projector threads of this process (each finishes its batch), then close the
    event store's connections (left to interpreter teardown, their finalizer fails)."""
    in_process.stop()
    while _leases:
        _leases.pop().close()
    close_analytics()
    close_application()


lifecycle.on_shutdown(close)


# ------------------------------------------------------------------------------ admin console
def projector_status(name: str, head: int) -> dict[str, Any]:
    """One projector's row: the source its tables were built from, its position, its lag and
    where its data lives. ``projector status`` and the console's projections page both show
    this. Raises what its store raises when that is unreachable."""
    if name == ANALYTICS:
        where = "ClickHouse" if settings.CLICKHOUSE_URL else f"chDB {settings.ANALYTICS_PATH}"
        try:
            position = analytics_position()
        except DirectoryInUseError:  # chDB's directory: the web server's process owns it
            return {"source": "log", "position": None, "lag": None,
                    "where": f"{where} (owned by make run's projector process)"}  # fmt: skip
        # A high-water mark under Kafka: the lag counts from it.
        return {"source": "log/kafka", "position": position, "lag": max(head - position, 0),
                "where": where}  # fmt: skip
    live = store(name)
    position = live.position()
    where = "PostgreSQL"
    status = getattr(live, "status", None)
    if status is not None:  # OpenSearch: the alias and the index behind it
        info = status()
        where = f"alias {info['alias']} -> index {info['index']} ({info['documents']} docs)"
    with connection.cursor() as cursor:
        recorded = recorded_source(cursor, name)  # feed.py's rule, as its claims check
    if name in KAFKA_PROJECTORS and recorded is not None and recorded[1] == KAFKA:
        # Fed by Kafka: the position is the contiguous frontier; the lag counts the events
        # not applied yet (some above the frontier may be).
        return {"source": "kafka", "position": position, "lag": kafka_store(name).unapplied(),
                "where": where}  # fmt: skip
    return {"source": "log", "position": position, "lag": max(head - position, 0), "where": where}


def _rebuild_lease(name: str) -> FeedLeases:
    leases = feed_leases(f"console rebuild {name}")
    try:
        leases.claim(name, LOG, switching=True)
    except BaseException:
        leases.close()
        raise
    return leases


@functools.cache
def rebuilds() -> Rebuilds:
    """Rebuilds started from the admin console, in threads of the web server's process."""
    return Rebuilds(
        RebuildPorts(
            names=lambda: list(PROJECTORS) if settings.ANALYTICS else list(STORES),
            event_source=event_source,
            store=projection_store,
            batch_size=lambda name: runner(name).batch_size,
            lease=_rebuild_lease,
            status=projector_status,
        )
    )
