"""Load the demo data once: an admin, three agents, customers and ~50 tickets with threads.

Tickets are made through the application's use cases, so the demo history is a real event
history (audit trail, as-of views and later projections all work on it). It is spread over
the past 30 days (``DAYS``): each ticket opens at a working-hours moment of one of them and
each later step comes after a plausible delay (first responses in minutes to hours,
resolutions in hours to days; a step that would fall after now is not taken, so recent
tickets are the least advanced). The events carry those times (``domain.clock.seeded_at``)
and are appended in time order across tickets, as a real desk's would be, so the analytics
dashboard of ``make run`` shows days of volume and real response times.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from django.core.management.base import BaseCommand
from django.db import transaction

from command_api.application import Actor, DeskstreamApplication, get_application
from domain import clock
from domain.agent import agent_id_for_user
from domain.lifecycle import Role
from infra.auth.models import AgentProfile, CustomerProfile, User

ADMIN = ("admin@deskstream.test", "Alex", "Admin")
AGENTS = [
    ("agent.ada@deskstream.test", "Ada", "Lovelace", ["billing", "accounts"], ["en", "fr"]),
    ("agent.bob@deskstream.test", "Bob", "Kahn", ["technical", "api"], ["en", "de"]),
    ("agent.cy@deskstream.test", "Cy", "Young", ["technical", "billing"], ["en", "es"]),
]
CUSTOMERS = [
    ("maria@acme.test", "Maria", "Garcia", "Acme Corp", "+1 555 0100"),
    ("li@globex.test", "Li", "Wei", "Globex", "+1 555 0101"),
    ("sam@initech.test", "Sam", "Patel", "Initech", "+1 555 0102"),
    ("noor@umbrella.test", "Noor", "Haddad", "Umbrella", "+44 20 7946 0103"),
    ("jon@hooli.test", "Jon", "Berg", "Hooli", "+49 30 901820"),
    ("eve@vandelay.test", "Eve", "Moss", "Vandelay Industries", "+1 555 0105"),
]
SUBJECTS = [
    ("Invoice shows the wrong VAT number", "billing"),
    ("Cannot reset my password", "accounts"),
    ("API returns 502 on bulk upload", "api"),
    ("Charged twice this month", "billing"),
    ("Export to CSV is missing columns", "technical"),
    ("How do I add a team member?", "accounts"),
    ("Webhook deliveries are delayed", "api"),
    ("Refund for cancelled plan", "billing"),
    ("Dashboard loads very slowly", "technical"),
    ("Two-factor codes not arriving", "accounts"),
]
# How a ticket opens (as many lines as CUSTOMER_LINES: the same draws of the generator).
OPENING_LINES = [
    "Hi, this started yesterday and is blocking our team.",
    "It happens to everyone in our account since this morning.",
    "Could you have a look? Details below.",
    "We noticed it after the last update.",
]
# What customers answer later in the conversation.
CUSTOMER_LINES = [
    "Hi, this started yesterday and is blocking our team.",
    "Thanks, I tried that but it still happens.",
    "Here is some more detail: it fails every time after login.",
    "That worked, thank you!",
]
AGENT_LINES = [
    "Thanks for reaching out, I'm looking into it now.",
    "Could you send the exact time it happened and your account e-mail?",
    "We deployed a fix; could you try again and let us know?",
    "I've escalated this to our engineers and will update you soon.",
]
NOTES = [
    "Internal: customer is on the enterprise plan, prioritise.",
    "Internal: reproduced on staging, see incident channel.",
]


def _user(email: str, first: str, last: str, role: str) -> User:
    user, created = User.objects.get_or_create(
        email=email,
        defaults={"username": email, "first_name": first, "last_name": last, "role": role},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


DAYS = 30
# Each demo agent takes this many open tickets: the ~50 seeded leave every agent 7-11, so a
# new ticket still finds room and automatic assignment shows (the default 5 left none).
DEMO_CAPACITY = 20
RATINGS = (5, 5, 5, 4, 4, 4, 3, 2, 1)  # what customers give, roughly


def _hours(rng: random.Random, median: float, spread: float = 1.0) -> timedelta:
    """A log-normal delay: most near ``median`` hours, a long tail of slow ones."""
    return timedelta(hours=median * math.exp(rng.gauss(0.0, spread)))


def _opened_at(rng: random.Random, now: datetime) -> datetime:
    """A moment of the past ``DAYS`` days, mostly in working hours (08:00-18:00 UTC),
    more on weekdays."""
    while True:
        day = (now - timedelta(days=rng.randrange(DAYS))).date()
        if day.weekday() >= 5 and rng.random() < 0.7:
            continue
        hour = rng.uniform(8, 18) if rng.random() < 0.85 else rng.uniform(0, 24)
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)
        if at < now:
            return at.replace(microsecond=0)


@dataclass
class _Ticket:
    """One ticket's planned steps: (when, what) in time order; ``id`` once it is opened."""

    steps: list[tuple[datetime, Callable[[_Ticket], object]]] = field(default_factory=list)
    id: UUID | None = None

    def then(self, at: datetime, step: Callable[[_Ticket], object]) -> datetime:
        self.steps.append((at, step))
        return at


def plan_ticket(
    app: DeskstreamApplication,
    rng: random.Random,
    n: int,
    customer: User,
    agent: User,
    opened: datetime,
) -> _Ticket:
    """The steps of demo ticket ``n`` from ``opened`` on (its fate drawn from ``rng``)."""
    me = Actor(str(customer.pk), Role.CUSTOMER)
    staff = Actor(str(agent.pk), Role.AGENT)
    subject, tag = SUBJECTS[n % len(SUBJECTS)]
    priority = rng.choice(["low", "medium", "medium", "high", "urgent"])
    urgency = {"urgent": 0.3, "high": 0.6, "medium": 1.0, "low": 1.6}[priority]
    description = f"{subject}. {rng.choice(OPENING_LINES)}"
    t = _Ticket()

    def tid() -> UUID:
        assert t.id is not None
        return t.id

    def open_(ticket: _Ticket) -> None:
        ticket.id = app.open_ticket(
            me,
            customer_id=me.id,
            subject=subject,
            description=description,
            priority=priority,
            tags=[tag],
        ).id

    def say(author: Actor, body: str) -> Callable[[_Ticket], object]:
        return lambda _: app.post_message(tid(), author, body=body)

    at = t.then(opened, open_)
    stage = rng.randrange(6)  # how far along the lifecycle this ticket got
    if stage == 0:
        return t
    at = t.then(
        at + _hours(rng, 0.3 * urgency, 0.8),
        lambda _: app.assign_ticket(tid(), staff, agent_id=staff.id, reason="demo data"),
    )
    if stage == 1:
        return t
    at = t.then(
        at + _hours(rng, 1.2 * urgency, 1.1),
        lambda _: app.change_status(tid(), staff, status="in_progress"),
    )
    first_reply = rng.choice(AGENT_LINES)
    at = t.then(
        at + timedelta(minutes=rng.randint(2, 20)),
        lambda _: app.post_message(tid(), staff, body=first_reply),
    )
    if rng.random() < 0.4:
        note = rng.choice(NOTES)
        at = t.then(
            at + timedelta(minutes=rng.randint(1, 30)),
            lambda _: app.post_message(tid(), staff, body=note, internal=True),
        )
    if stage == 2:
        return t
    at = t.then(
        at + timedelta(minutes=rng.randint(1, 5)),
        lambda _: app.change_status(tid(), staff, status="waiting_on_customer"),
    )
    if stage == 3:
        return t
    for round_ in range(2 if rng.random() < 0.15 else 1):  # some come back after resolution
        answer, reply = rng.choice(CUSTOMER_LINES), rng.choice(AGENT_LINES)
        at = t.then(
            at + _hours(rng, 6.0 if round_ == 0 else 20.0),
            say(me, answer),
        )
        at = t.then(
            at + _hours(rng, 1.5 * urgency),
            say(staff, reply),
        )
        at = t.then(
            at + _hours(rng, 4.0 * urgency, 1.2),
            lambda _: app.change_status(tid(), staff, status="resolved", reason="fixed"),
        )
    if stage == 5:
        at = t.then(
            at + _hours(rng, 24.0, 0.8), lambda _: app.change_status(tid(), me, status="closed")
        )
    if rng.random() < 0.6:
        rating = rng.choice(RATINGS)
        comment = "" if rating >= 4 or rng.random() < 0.5 else "Took too long to sort out."
        t.then(
            at + _hours(rng, 3.0, 1.2),
            lambda _: app.rate_satisfaction(
                tid(), me, rating=rating, comment=comment, channel="app"
            ),
        )
    return t


def seed_tickets(
    app: DeskstreamApplication,
    rng: random.Random,
    tickets: int,
    customers: list[User],
    agents: list[User],
    now: datetime,
    after_each: Callable[[], Any] | None = None,
) -> int:
    """Plan ``tickets`` tickets over the past ``DAYS`` days and run their steps in time
    order across tickets, each at its time (``after_each`` after each, e.g. a projector's
    step in tests). Steps planned after ``now`` are not taken. Returns the steps taken."""
    plans = [
        plan_ticket(app, rng, n, rng.choice(customers), rng.choice(agents), _opened_at(rng, now))
        for n in range(tickets)
    ]
    queue = [(t.steps[0][0], n, 0) for n, t in enumerate(plans)]
    heapq.heapify(queue)
    taken = 0
    while queue:
        at, n, i = heapq.heappop(queue)
        if at >= now:
            continue  # not yet: the ticket stays where it got to
        with clock.seeded_at(at):
            plans[n].steps[i][1](plans[n])
        taken += 1
        if after_each is not None:
            after_each()
        if i + 1 < len(plans[n].steps):
            heapq.heappush(queue, (plans[n].steps[i + 1][0], n, i + 1))
    return taken


class Command(BaseCommand):
    help = "Load demo users and tickets (does nothing if they are already there)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tickets", type=int, default=50)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        if User.objects.filter(email=ADMIN[0]).exists():
            self.stdout.write("Demo data already loaded.")
            return
        rng = random.Random(options["seed"])
        app = get_application()
        with transaction.atomic():
            _user(*ADMIN, role=User.Role.ADMIN)
            agents = []
            for email, first, last, skills, langs in AGENTS:
                user = _user(email, first, last, User.Role.AGENT)
                AgentProfile.objects.create(
                    user=user, title="Support engineer", agent_id=agent_id_for_user(str(user.pk))
                )
                agents.append((user, skills, langs))
            customers = []
            for email, first, last, company, phone in CUSTOMERS:
                user = _user(email, first, last, User.Role.CUSTOMER)
                CustomerProfile.objects.create(user=user, company=company, phone=phone)
                customers.append(user)
        for user, skills, langs in agents:
            app.register_agent(
                user_id=str(user.pk),
                name=user.display_name,
                capacity=DEMO_CAPACITY,
                skills=skills,
                languages=langs,
            )
            app.set_agent_availability(str(user.pk), rng.choice(["online", "online", "away"]))
        seed_tickets(
            app,
            rng,
            options["tickets"],
            customers,
            [a for a, _, _ in agents],
            datetime.now(UTC).replace(microsecond=0),
        )
        self.stdout.write(f"Loaded demo data: {options['tickets']} tickets.")
