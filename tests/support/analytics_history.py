"""A small ticket history with hand-computed analytics (docs/analytics.md, "Worked example").

Events are built directly, with the times they say, so every metric has one known answer:
``EXPECTED`` holds the numbers computed by hand for the range 2026-03-02 .. 2026-03-03 (UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from domain.ticket import Ticket
from projections.ports import Envelope

DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)
T1, T2, T3, T4 = (UUID(int=i) for i in (0x1001, 0x1002, 0x1003, 0x1004))
A1, A2, ADMIN = "agent-1", "agent-2", "admin-1"


def _at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


def _opened(t: UUID, at: datetime, customer: str, priority: str, tags: list[str], lang: str,
            actor: str, role: str) -> Any:  # fmt: skip
    return Ticket.TicketOpened(
        originator_id=t, originator_version=1, timestamp=at,
        originator_topic="deskstream.ticket:Ticket", customer_id=customer, subject="s",
        description="d", priority=priority, tags=tags, language=lang, actor_id=actor,
        actor_role=role,
    )  # fmt: skip


def _msg(t: UUID, v: int, at: datetime, author: str, role: str, internal: bool = False) -> Any:
    return Ticket.MessagePosted(
        originator_id=t, originator_version=v, timestamp=at, message_id=uuid4(),
        author_id=author, author_role=role, body="b", internal=internal, attachments=[],
    )  # fmt: skip


def _status(t: UUID, v: int, at: datetime, frm: str, to: str, actor: str, role: str) -> Any:
    return Ticket.StatusChanged(
        originator_id=t, originator_version=v, timestamp=at, from_status=frm, to_status=to,
        actor_id=actor, actor_role=role, reason="",
    )  # fmt: skip


def _assign(t: UUID, v: int, at: datetime, agent: str) -> Any:
    return Ticket.AgentAssigned(
        originator_id=t, originator_version=v, timestamp=at, agent_id=agent,
        previous_agent_id=None, actor_id=ADMIN, actor_role="admin", policy="manual", reason="",
    )  # fmt: skip


def _breach(t: UUID, v: int, at: datetime, target: str, priority: str) -> Any:
    return Ticket.SlaBreached(
        originator_id=t, originator_version=v, timestamp=at, target=target, deadline=at,
        breached_at=at, priority=priority, policy="p", actor_id="automation",
        actor_role="system",
    )  # fmt: skip


def events() -> list[Any]:
    """In log order (as they would be stored): by time, a ticket's events in version order."""
    return [
        # T1: high, billing, en, by the customer; answered after 1 h, resolved after 4 h,
        # reopened by the customer's reply next day and resolved again.
        _opened(T1, _at(DAY1, 9), "cust-1", "high", ["billing"], "en", "cust-1", "customer"),
        _assign(T1, 2, _at(DAY1, 9, 10), A1),
        _status(T1, 3, _at(DAY1, 9, 10), "open", "assigned", ADMIN, "admin"),
        _msg(T1, 4, _at(DAY1, 10), A1, "agent"),
        _msg(T1, 5, _at(DAY1, 11), A1, "agent", internal=True),
        _status(T1, 6, _at(DAY1, 13), "assigned", "resolved", A1, "agent"),
        # T2: low, billing + login, de, opened by an agent; answered after 2 h, a resolution
        # breach, closed (a resolution) after 24 h.
        _opened(T2, _at(DAY1, 10), "cust-2", "low", ["billing", "login"], "de", A2, "agent"),
        _assign(T2, 2, _at(DAY1, 10, 30), A2),
        _status(T2, 3, _at(DAY1, 10, 30), "open", "assigned", ADMIN, "admin"),
        _msg(T2, 4, _at(DAY1, 12), A2, "agent"),
        _breach(T2, 5, _at(DAY1, 12, 30), "resolution", "low"),
        # T4: medium, login, fr; opened 23:30 UTC (the next day in Tokyo), answered after 1 h,
        # then waiting on the customer.
        _opened(T4, _at(DAY1, 23, 30), "cust-1", "medium", ["login"], "fr", "cust-1", "customer"),
        _assign(T4, 2, _at(DAY1, 23, 45), A1),
        _status(T4, 3, _at(DAY1, 23, 45), "open", "assigned", ADMIN, "admin"),
        _msg(T4, 4, _at(DAY2, 0, 30), A1, "agent"),
        _status(T4, 5, _at(DAY2, 1), "assigned", "waiting_on_customer", A1, "agent"),
        _msg(T1, 7, _at(DAY2, 8), "cust-1", "customer"),
        _status(T1, 8, _at(DAY2, 8), "resolved", "in_progress", "cust-1", "customer"),
        # T3: urgent, no tags, en; a first-response breach, then lowered to high; still open.
        _opened(T3, _at(DAY2, 9), "cust-3", "urgent", [], "en", "cust-3", "customer"),
        _status(T1, 9, _at(DAY2, 10), "in_progress", "resolved", A1, "agent"),
        _status(T2, 6, _at(DAY2, 10), "assigned", "closed", A2, "agent"),
        _breach(T3, 2, _at(DAY2, 10), "first_response", "urgent"),
        Ticket.PriorityChanged(
            originator_id=T3,
            originator_version=3,
            timestamp=_at(DAY2, 11),
            from_priority="urgent",
            to_priority="high",
            actor_id=ADMIN,
            actor_role="admin",
        ),
    ]


def envelopes(start: int = 1) -> list[Envelope]:
    return [Envelope(start + i, event) for i, event in enumerate(events())]


HOUR, DAY = 3600, 86400
EXPECTED: dict[str, Any] = {
    "open_now": {
        "open": 2,
        "by_status": {"assigned": 0, "in_progress": 0, "open": 1, "waiting_on_customer": 1},
    },
    "daily": [
        {"day": "2026-03-02", "created": 3, "resolved": 1},
        {"day": "2026-03-03", "created": 1, "resolved": 2},
    ],
    "status_over_time": [
        {
            "day": "2026-03-02",
            "by_status": {
                "open": 0,
                "assigned": 2,
                "in_progress": 0,
                "waiting_on_customer": 0,
                "resolved": 1,
                "closed": 0,
            },
        },
        {
            "day": "2026-03-03",
            "by_status": {
                "open": 1,
                "assigned": 0,
                "in_progress": 0,
                "waiting_on_customer": 1,
                "resolved": 1,
                "closed": 1,
            },
        },
    ],
    "totals": {
        "created": 4,
        "resolved": 3,
        "reopened": 1,
        "sla_breaches": 2,
        "first_response_breaches": 1,
        "resolution_breaches": 1,
        "staff_replies": 3,
    },
    # T1 1 h, T2 2 h, T4 1 h: median 1 h, p90 interpolated 1 h + 0.8 h, average 4/3 h.
    "first_response": {
        "count": 3,
        "median": 1.0 * HOUR,
        "p90": 1.8 * HOUR,
        "average": 4 / 3 * HOUR,
        "clock": "wall",
        "distribution": {"1-4 h": 3},
    },
    # T1 4 h, T2 24 h: median 14 h, p90 4 h + 0.9 * 20 h = 22 h, average 14 h.
    "resolution": {
        "count": 2,
        "median": 14.0 * HOUR,
        "p90": 22.0 * HOUR,
        "average": 14.0 * HOUR,
        "clock": "wall",
        "distribution": {"4-8 h": 1, "1-3 d": 1},
    },
    "sla": {
        "breaches": 2,
        "first_response_breaches": 1,
        "resolution_breaches": 1,
        "tickets": 4,
        "compliant": 2,
        "compliance_pct": 50.0,
    },
    "reopen_rate": {"reopened": 1, "resolved": 3, "reopen_rate_pct": 33.33},
    "backlog": [{"agent_id": "", "open": 1}, {"agent_id": A1, "open": 1}],
    "throughput": [
        {"agent_id": A1, "resolved": 2, "replies": 2},
        {"agent_id": A2, "resolved": 1, "replies": 1},
    ],
    "volume_priority": [
        {"priority": "high", "tickets": 2},
        {"priority": "low", "tickets": 1},
        {"priority": "medium", "tickets": 1},
    ],
    "volume_language": [
        {"language": "en", "tickets": 2},
        {"language": "de", "tickets": 1},
        {"language": "fr", "tickets": 1},
    ],
    "volume_tag": [{"tag": "billing", "tickets": 2}, {"tag": "login", "tickets": 2}],
    # T2 was opened by an agent on the customer's behalf, the others by their customers.
    "volume_channel": [{"channel": "portal", "tickets": 3}, {"channel": "staff", "tickets": 1}],
}
# In business time, with the default calendar (Monday to Friday 09:00-17:00 UTC; 2026-03-02
# is a Monday): T1 answered after 1 h and resolved after 4 h; T2 answered after 2 h and
# closed Tuesday 10:00 (7 h on Monday + 1 h on Tuesday = 8 h); T4 opened Monday 23:30 and
# answered Tuesday 00:30, both outside opening hours: 0 h.
EXPECTED_BUSINESS: dict[str, Any] = {
    "first_response": {
        "count": 3,
        "median": 1.0 * HOUR,
        "p90": 1.8 * HOUR,
        "average": 1.0 * HOUR,
        "clock": "business",
        "distribution": {"< 1 h": 1, "1-4 h": 2},
    },
    "resolution": {
        "count": 2,
        "median": 6.0 * HOUR,
        "p90": 7.6 * HOUR,
        "average": 6.0 * HOUR,
        "clock": "business",
        "distribution": {"4-8 h": 1, "8-24 h": 1},
    },
}


# ---------------------------------------------------------------------------- AI drafts
# Appended after ``events()`` (later versions of T3 and T4), for the drafts metric only.
DAY3 = date(2026, 3, 4)
D1, D2, D3, D4, D5, D6 = (UUID(int=i) for i in range(0x2001, 0x2007))


def _requested(t: UUID, v: int, at: datetime, draft: UUID, agent: str) -> Any:
    return Ticket.DraftRequested(
        originator_id=t, originator_version=v, timestamp=at, draft_id=draft, language="en",
        allow_internal=False, actor_id=agent, actor_role="agent",
    )  # fmt: skip


def _generated(t: UUID, v: int, at: datetime, draft: UUID, outcome: str = "ready") -> Any:
    return Ticket.DraftGenerated(
        originator_id=t, originator_version=v, timestamp=at, draft_id=draft, outcome=outcome,
        text="x" if outcome == "ready" else "", reason="", source="retrieval", model="",
        prompt_version="1", prompt_hash="h", context_version=v - 2, prompt_tokens=0,
        completion_tokens=0, latency_ms=5, cost_usd=0.0, cached=False, actor_id="system",
        actor_role="system",
    )  # fmt: skip


def _sent(t: UUID, v: int, at: datetime, draft: UUID, agent: str, distance: int,
          length: int) -> list[Any]:  # fmt: skip
    message = _msg(t, v, at, agent, "agent")
    return [
        message,
        Ticket.ReplySentFromDraft(
            originator_id=t, originator_version=v + 1, timestamp=at, draft_id=draft,
            message_id=message.message_id, edit_distance=distance, draft_length=length,
            reply_length=length, actor_id=agent, actor_role="agent",
        ),
    ]  # fmt: skip


def draft_events() -> list[Any]:
    """A2: D1 ready and sent (12 of 100 characters changed). A1: D2 ready, never sent; D3
    refused (not a ready draft); D4 ready, sent (30 of 200); D5 ready, sent (6 of 60). D6
    (A2) comes back the day after the range and is not counted."""
    return [
        _requested(T4, 6, _at(DAY2, 2), D2, A1),
        _generated(T4, 7, _at(DAY2, 2, 1), D2),
        _requested(T4, 8, _at(DAY2, 3), D3, A1),
        _generated(T4, 9, _at(DAY2, 3, 1), D3, "refused"),
        _requested(T4, 10, _at(DAY2, 4), D4, A1),
        _generated(T4, 11, _at(DAY2, 4, 1), D4),
        *_sent(T4, 12, _at(DAY2, 4, 10), D4, A1, 30, 200),
        _requested(T4, 14, _at(DAY2, 5), D5, A1),
        _generated(T4, 15, _at(DAY2, 5, 1), D5),
        _requested(T3, 4, _at(DAY2, 11, 10), D1, A2),
        _generated(T3, 5, _at(DAY2, 11, 11), D1),
        *_sent(T3, 6, _at(DAY2, 11, 20), D1, A2, 12, 100),
        *_sent(T4, 16, _at(DAY3, 9), D5, A1, 6, 60),  # sent after the range: still accepted
        _requested(T3, 8, _at(DAY3, 9), D6, A2),
        _generated(T3, 9, _at(DAY3, 9, 1), D6),
    ]


def envelopes_with_drafts() -> list[Envelope]:
    return [Envelope(1 + i, event) for i, event in enumerate(events() + draft_events())]


# Per agent: ready drafts in the range, sent, sent/ready %, mean edit distance and mean of
# distance/length % over the sent ones: A1 (D2, D4, D5): 2 of 3, 66.67 %, (30 + 6) / 2 = 18,
# (15 % + 10 %) / 2 = 12.5 %; A2 (D1): 1 of 1, 100 %, 12, 12 %.
EXPECTED_DRAFTS: list[dict[str, Any]] = [
    {
        "agent_id": A1,
        "drafts": 3,
        "sent": 2,
        "acceptance_pct": 66.67,
        "edit_distance_avg": 18.0,
        "edit_pct_avg": 12.5,
    },
    {
        "agent_id": A2,
        "drafts": 1,
        "sent": 1,
        "acceptance_pct": 100.0,
        "edit_distance_avg": 12.0,
        "edit_pct_avg": 12.0,
    },
]


# ---------------------------------------------------------------------------- satisfaction
# Appended after ``events()`` (later versions of T1 and T2), for the CSAT metric only.
def _rated(t: UUID, v: int, at: datetime, rating: int, customer: str, channel: str) -> Any:
    return Ticket.SatisfactionRated(
        originator_id=t, originator_version=v, timestamp=at, rating=rating, comment="",
        channel=channel, actor_id=customer, actor_role="customer",
    )  # fmt: skip


def satisfaction_events() -> list[Any]:
    """T1 (A1, no team) rated 2, then changed to 4: the latest counts. T2 (A2) rated 3.
    T1 rated again the day after the range (5): T1 then falls out of the range's ratings."""
    return [
        _rated(T2, 7, _at(DAY2, 11), 3, "cust-2", "email"),
        _rated(T1, 10, _at(DAY2, 12), 2, "cust-1", "app"),
        _rated(T1, 11, _at(DAY2, 14), 4, "cust-1", "app"),
    ]


def envelopes_with_ratings(later: bool = False) -> list[Envelope]:
    """The history and its ratings; ``later``: T1 rated once more on DAY3."""
    extra = [_rated(T1, 12, _at(DAY3, 9), 5, "cust-1", "email")] if later else []
    stream = events() + satisfaction_events() + extra
    return [Envelope(1 + i, event) for i, event in enumerate(stream)]


# In the range: T1 4 (its latest), T2 3: 2 ratings, average 3.5, 1 of 2 satisfied (4-5).
EXPECTED_SATISFACTION: dict[str, Any] = {
    "ratings": 2,
    "average": 3.5,
    "satisfied_pct": 50.0,
    "distribution": [
        {"rating": 1, "tickets": 0},
        {"rating": 2, "tickets": 0},
        {"rating": 3, "tickets": 1},
        {"rating": 4, "tickets": 1},
        {"rating": 5, "tickets": 0},
    ],
    "by_agent": [
        {"agent_id": A1, "ratings": 1, "average": 4.0, "satisfied_pct": 100.0},
        {"agent_id": A2, "ratings": 1, "average": 3.0, "satisfied_pct": 0.0},
    ],
    "by_team": [{"team": "", "ratings": 2, "average": 3.5, "satisfied_pct": 50.0}],
}
