"""Load the demo data once: an admin, three agents, customers and ~50 tickets with threads.

Tickets are made through the application's use cases, so the demo history is a real event
history (audit trail, as-of views and later projections all work on it).
"""

from __future__ import annotations

import random
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from command_api.application import Actor, get_application
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
                user_id=str(user.pk), name=user.display_name, skills=skills, languages=langs
            )
            app.set_agent_availability(str(user.pk), rng.choice(["online", "online", "away"]))
        for n in range(options["tickets"]):
            self._ticket(app, rng, n, customers, [a for a, _, _ in agents])
        self.stdout.write(f"Loaded demo data: {options['tickets']} tickets.")

    def _ticket(
        self, app: Any, rng: random.Random, n: int, customers: list[User], agents: list[User]
    ) -> None:
        customer = rng.choice(customers)
        me = Actor(str(customer.pk), Role.CUSTOMER)
        subject, tag = SUBJECTS[n % len(SUBJECTS)]
        res = app.open_ticket(
            me,
            customer_id=me.id,
            subject=subject,
            description=f"{subject}. {rng.choice(CUSTOMER_LINES)}",
            priority=rng.choice(["low", "medium", "medium", "high", "urgent"]),
            tags=[tag],
        )
        tid = res.id
        stage = rng.randrange(6)  # how far along the lifecycle this ticket got
        if stage == 0:
            return
        agent = rng.choice(agents)
        staff = Actor(str(agent.pk), Role.AGENT)
        app.assign_ticket(tid, staff, agent_id=staff.id, reason="demo data")
        if stage == 1:
            return
        app.change_status(tid, staff, status="in_progress")
        app.post_message(tid, staff, body=rng.choice(AGENT_LINES))
        if rng.random() < 0.4:
            app.post_message(tid, staff, body=rng.choice(NOTES), internal=True)
        if stage == 2:
            return
        app.change_status(tid, staff, status="waiting_on_customer")
        if stage == 3:
            return
        app.post_message(tid, me, body=rng.choice(CUSTOMER_LINES))
        app.post_message(tid, staff, body=rng.choice(AGENT_LINES))
        app.change_status(tid, staff, status="resolved", reason="fixed")
        if stage == 5:
            app.change_status(tid, me, status="closed")
