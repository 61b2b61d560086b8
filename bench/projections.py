"""Projection rebuild rate and search latency on a realistic history, against the log's ceiling.

Run it as ``.venv/bin/python bench/projections.py [--tickets 20000 --messages 200000]
[--db-url URL] [--keep | --reuse]``.

What it does, in one run:

1. Uses its own database (``benchlib.start_database``): ``--db-url`` if given (used as it is,
   never dropped), else a fresh ``bench_projections`` on the server of ``DATABASE_URL`` (or
   127.0.0.1:5432), else an embedded server under ``var/bench-proj-pg`` (as ``make run``
   starts one). Runs ``migrate`` against it. The
   database is dropped at the end unless ``--keep``; ``--reuse`` keeps it too, and skips
   the generation when the database already holds a corpus made with the same parameters.
2. Generates the history with the domain methods (``Ticket.open``, ``post_message``,
   ``assign``, ``change_status``, ...): customers and agents as accounts, tickets whose
   subjects, descriptions and messages come from a support-desk vocabulary, priorities,
   tags, assignments, status changes, ~20 % internal notes. Many tickets are in progress at
   once, so one ticket's events are spread over the log the way real traffic spreads them,
   and event timestamps run over the past year (the bench sets the events' clock). The
   events are appended in large transactions, ``app.save(*events)`` (the same call as
   ``app.save(*aggregates)``: the library collects the aggregates' pending events).
3. Measures the ceiling: the notification log read through the projection engine's own
   ``EventSource`` (``read(after, limit)`` to the head, decoded into domain events), and the
   same rows fetched without decoding.
4. Rebuilds the ``read_models`` and ``search`` projections with
   ``projections.runner.rebuild`` and the real PostgreSQL stores, at two batch sizes; events/s
   is the events applied over the wall time of the whole rebuild (shadow tables, catch-up,
   swap). The CPU of this process and of the PostgreSQL backends is measured beside it.
5. Search latency: a mix of queries (common words, two-word and quoted phrases, rare words,
   reference numbers, filters, as staff and as a customer), through the search port directly
   and through ``GET /api/search`` on a server started by the bench
   (``python -m infra.server.launcher --no-demo``, projectors in process).
6. Freshness: posts messages with unique words through ``POST /api/tickets/{id}/messages`` and
   polls ``GET /api/search`` until each one is found; the time from the command's response to
   the first search that finds it.
7. Writes ``bench/results/projections.json``, renders its section of ``docs/benchmarks.md``
   from it and stops everything it started, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
import psutil
from psycopg import sql

from bench.benchlib import (
    BASE_DIR,
    AppServer,
    Database,
    background_cores,
    column,
    log,
    machine,
    percentile,
    publish,
    results,
    start_database,
    stop_database,
    table,
)

BENCH = "projections"
DB_NAME = "bench_projections"
PG_DIR = BASE_DIR / "var" / "bench-proj-pg"
TARGET_REBUILD = 10_000.0  # events/s
TARGET_SEARCH_P95_MS = 50.0
TARGET_FRESH_P95_S = 1.0
LIBRARY_RUNNER_RATE = 760  # the library's one-event-per-transaction runner, from the issue
HISTORY_DAYS = 365
PROJECTORS = ("read_models", "search")  # the ones rebuilt and measured
# This bench's first full run (same corpus and machine, 2026-11-26), before the stores wrote
# each batch's rows with one statement per table (infra/postgres/bulk.py): events/s at batch
# 1,000, with the PostgreSQL and bench-process CPU seconds of that rebuild.
BEFORE_BULK = {"read_models": (3081, 64.9, 43.1), "search": (1512, 167.2, 71.6)}
# Server settings a caller's environment could change; the server starts from defaults.
TUNING_VARS = (
    "DESKSTREAM_GROUP_COMMIT",
    "DESKSTREAM_GROUP_COMMIT_MAX_BATCH",
    "DESKSTREAM_EVENTSTORE_POOL_SIZE",
    "DESKSTREAM_DB_POOL_SIZE",
    "DESKSTREAM_PROJECTORS_IN_PROCESS",
    "DESKSTREAM_PROJECTION_BATCH_SIZE",
    "DESKSTREAM_REDIS_URL",
    "DESKSTREAM_DEMO",
    "DESKSTREAM_HOST",
    "DESKSTREAM_PORT",
)


# ------------------------------------------------------------------------------ vocabulary
# (nouns, verbs, symptoms) per topic; subjects and sentences are filled from them.
TOPICS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "billing": (
        ["invoice", "refund", "charge", "receipt", "subscription", "plan", "credit card",
         "payment", "VAT number", "billing address", "discount code", "credit note",
         "annual plan", "renewal", "seat count"],
        ["download", "update", "cancel", "pay", "upgrade", "downgrade", "change"],
        ["a declined payment", "the wrong amount", "a double charge", "a missing invoice",
         "an unexpected renewal", "the old VAT rate", "a failed refund"],
    ),
    "login": (
        ["password", "login", "account", "two-factor code", "SSO", "session", "email address",
         "team member", "invitation", "role", "verification email", "recovery code"],
        ["reset", "sign in", "invite", "remove", "verify", "unlock", "log in"],
        ["an invalid token error", "a redirect loop", "a locked account", "an expired link",
         "no verification email", "a blank login page", "a permission denied error"],
    ),
    "export": (
        ["CSV export", "report", "dashboard", "spreadsheet", "filter", "date range",
         "import file", "column", "scheduled report", "attachment", "PDF"],
        ["export", "import", "download", "schedule", "filter", "open"],
        ["an empty file", "a timeout", "garbled characters", "missing rows",
         "duplicated rows", "the wrong time zone", "a corrupted file"],
    ),
    "api": (
        ["API key", "webhook", "endpoint", "rate limit", "OAuth token", "integration",
         "payload", "callback URL", "sandbox", "SDK", "pagination cursor"],
        ["call", "configure", "rotate", "retry", "authenticate", "register"],
        ["a 500 error", "a 429 response", "duplicate deliveries", "a signature mismatch",
         "an expired token", "a timeout after 30 seconds", "an empty response"],
    ),
    "performance": (
        ["dashboard", "page", "search", "sync", "upload", "editor", "timeline", "calendar",
         "notification", "inbox"],
        ["load", "open", "sync", "upload", "refresh", "save"],
        ["very slow loading", "a blank screen", "a crash", "a spinning wheel",
         "high memory use", "stale data", "a frozen browser tab"],
    ),
    "mobile": (
        ["mobile app", "push notification", "iPhone", "Android phone", "tablet",
         "offline mode", "app update", "camera upload", "widget", "dark mode"],
        ["install", "update", "open", "enable", "sync", "log in to"],
        ["a crash on startup", "missing notifications", "a white screen",
         "drained battery", "an outdated version", "a sync conflict"],
    ),
}  # fmt: skip
TOPIC_NAMES = list(TOPICS)
SUBJECTS = [
    "{Noun} problem after the last update",
    "Cannot {verb} the {noun}",
    "{Noun}: {symptom}",
    "Question about the {noun}",
    "Urgent: {noun} shows {symptom}",
    "{Noun} not working since yesterday",
    "Help with {noun} and {noun2}",
    "Getting {symptom} when I {verb} the {noun}",
]
CUSTOMER_LINES = [
    "Hi, I am trying to {verb} the {noun} but I keep getting {symptom}.",
    "Since yesterday the {noun} gives {symptom} whenever I {verb} it.",
    "Could you please check the {noun} on our account?",
    "We have {count} colleagues affected, all with {symptom}.",
    "I have attached a screenshot of the {noun} page.",
    "This is blocking our team, we need the {noun} for the month end.",
    "It worked fine last week, nothing changed on our side.",
    "Thanks, that fixed the {noun} issue.",
    "Still the same problem with the {noun}, I tried again this morning.",
    "Is there a workaround until the {noun} is fixed?",
    "Our reference is {ref}.",
    "We use {rare} together with the {noun}, maybe that matters.",
]
AGENT_LINES = [
    "Thanks for reaching out. I have checked the {noun} and found {symptom}.",
    "Could you send me the {noun} details and the time it happened?",
    "I have escalated the {noun} issue to our engineers.",
    "Please try to {verb} the {noun} again, it should work now.",
    "Our engineers deployed a fix for {symptom} this morning.",
    "I can confirm the {noun} was updated on our side.",
    "Could you clear the browser cache and {verb} the {noun} once more?",
    "I am closing the loop on this one, let us know if the {noun} acts up again.",
    "Known issue with {rare}, a fix for {symptom} is scheduled.",
]
INTERNAL_LINES = [
    "Internal: looks like the {noun} bug from last sprint, see {ref}.",
    "Escalating to tier 2, {noun} shows {symptom} for this customer.",
    "Customer is on the {plan} plan, do not offer a refund without approval.",
    "Checked the logs: {symptom} on the {noun} service, {rare} involved.",
    "Note for the next shift: waiting for engineering on the {noun}.",
]
# Product and integration names: each in a few hundred documents of the full corpus.
RARE = [
    "kerberos", "okta", "zapier", "quickbooks", "xero", "salesforce", "hubspot", "yubikey",
    "chromebook", "citrix", "sharepoint", "dropbox", "netsuite", "shopify", "magento",
    "woocommerce", "stripe", "braintree", "adyen", "paddle", "intercom", "zendesk", "jira",
    "confluence", "bitbucket", "gitlab", "jenkins", "terraform", "kubernetes", "openshift",
    "cloudflare", "akamai", "fastly", "sendgrid", "mailchimp", "mailgun", "twilio", "vonage",
    "auth0", "onelogin", "pingfederate", "keycloak", "ldap", "scim", "saml", "freshbooks",
    "sage", "datev", "lexoffice", "sevdesk", "pipedrive", "airtable", "notion", "asana",
    "trello", "monday", "clickup", "smartsheet", "tableau", "looker", "powerbi", "metabase",
    "snowflake", "bigquery", "redshift", "databricks", "segment", "mixpanel", "amplitude",
    "hotjar", "firefox", "opera", "vivaldi", "brave", "edge", "safari", "huawei", "xiaomi",
    "oneplus", "pixel", "galaxy", "ipad", "macbook", "thinkpad", "ubuntu", "fedora", "debian",
    "windows11", "sonoma", "ventura", "webview", "electron", "proxy", "vpn", "zscaler",
    "fortinet", "paloalto", "sophos", "crowdstrike", "sentinelone",
]  # fmt: skip
# Issue families (the corpus of bench/drafts.py, ``generate(families=True)``): each symptom
# of a topic is a family of issues, with the sentence a customer describes it in and the
# reply that typically resolves it, so that similar tickets were resolved alike, as on a
# real desk. Same order as the topic's symptoms.
FAMILIES: dict[str, list[tuple[str, str]]] = {
    "billing": [
        ("My card was declined when I tried to pay the {noun}.",
         "The bank declined the card because 3-D Secure was not completed. I have sent a new "
         "payment link: open it on the phone your bank app runs on and approve the payment."),
        ("The {noun} shows a different total than the price on your website.",
         "The total included the previous tax region. I corrected the billing country, voided "
         "the old invoice and issued a corrected one at the right amount."),
        ("We were charged twice for the same {noun} this month.",
         "I found the duplicate charge: the retry after a gateway timeout went through as a "
         "second payment. It is refunded now and shows on your statement within 5 to 10 "
         "business days."),
        ("I cannot find the invoice for last month anywhere.",
         "The invoice was generated but mailed to the former billing contact. I changed the "
         "billing contact to you and resent it; all invoices are also under Settings, Billing, "
         "History."),
        ("Our plan renewed although we wanted to stop it.",
         "Auto-renewal was still switched on for the workspace. I cancelled the renewal, "
         "refunded the unused period pro rata and turned auto-renewal off."),
        ("The invoice still uses last year's VAT percentage.",
         "Your VAT ID was not validated, so the standard rate stayed. I validated the VAT ID, "
         "reissued the invoice with the reverse charge and added the credit note."),
        ("The refund you promised never arrived on our card.",
         "The refund failed because the card on file had expired. I reissued it as a bank "
         "transfer; please reply with the IBAN and it arrives within 3 business days."),
    ],
    "login": [
        ("The login page says my token is invalid every time.",
         "Your browser kept an old single sign-on cookie. Please sign out everywhere, delete "
         "the cookies for our domain and sign in again through the SSO button."),
        ("After typing my password the page keeps redirecting back to itself.",
         "The redirect loop comes from third-party cookies being blocked for the identity "
         "provider. Allow cookies for the login domain or use the direct login link we "
         "sent."),
        ("My account got locked after a few attempts.",
         "The account was locked after five failed attempts. I unlocked it; use the reset "
         "link to choose a new password, and the lock will not return."),
        ("The link in the email says it has expired.",
         "Links are valid for 24 hours and yours had expired. I sent a fresh invitation that "
         "is valid for 7 days; open it in the same browser you sign in with."),
        ("The verification email never reaches my inbox.",
         "Your mail server rejected our sender domain as spam. I whitelisted your address and "
         "resent the verification email; please also add our domain to the allowed senders."),
        ("The login page loads completely empty.",
         "An ad blocker stops the login script from loading. Please disable the ad blocker "
         "for our domain or try a private window, and the form will appear."),
        ("I get permission denied when I open the {noun}.",
         "Your role was missing the permission for this area. I granted the Editor role on "
         "the workspace; sign out and in again so the new permission applies."),
    ],
    "export": [
        ("The exported file downloads but it is empty.",
         "The export used a filter that matched no rows. I cleared the saved filter and the "
         "export now contains all rows; choose the date range before you export."),
        ("The export stops with a timeout for larger ranges.",
         "Exports over 100,000 rows time out in the browser. I enabled background exports for "
         "your workspace: the file is e-mailed to you when it is ready."),
        ("Special characters show up as strange symbols in the file.",
         "The file is UTF-8 and your spreadsheet opened it as Latin-1. Import it with the "
         "UTF-8 encoding option, or choose the Excel format which keeps the characters."),
        ("Some rows are missing from the {noun}.",
         "Archived records are left out of exports by default. I switched on Include "
         "archived items in the export settings, so every row is exported."),
        ("The {noun} contains the same rows twice.",
         "The duplicates came from a sync job that ran twice. Our engineers removed the "
         "duplicate records and the job now runs once; please export again."),
        ("The times in the export are off by a few hours.",
         "Exports used the UTC time zone. I set the export time zone to your workspace time "
         "zone, so the times now match what you see in the app."),
        ("The file we download cannot be opened, it says it is damaged.",
         "The download was cut off by your proxy after 50 MB. I enabled compressed exports, "
         "so the file is much smaller and arrives whole."),
    ],
    "api": [
        ("Our calls to the {noun} fail with an internal server error.",
         "The 500 errors came from a malformed date in the request body. Send dates in ISO "
         "8601 with a time zone, and the endpoint accepts them."),
        ("We keep getting too many requests responses.",
         "You hit the rate limit of 100 requests per minute. I raised your limit to 600; "
         "please also honour the Retry-After header and back off when you get a 429."),
        ("The {noun} delivers every event to us several times.",
         "Webhooks are retried when your endpoint answers slower than 10 seconds. Answer with "
         "200 right away and process the event afterwards, and deduplicate on the event id."),
        ("Signature verification fails for every webhook we receive.",
         "The signature is computed over the raw request body. Verify it before your "
         "framework parses the JSON, using the signing secret, not the API key."),
        ("The access token stops working after an hour.",
         "Access tokens expire after one hour by design. Use the refresh token to get a new "
         "access token before it expires; I have enabled refresh tokens for your app."),
        ("Requests to the {noun} hang and give up after thirty seconds.",
         "The requests time out because pagination was not used. Request pages of at most "
         "500 items and follow the next cursor; each page then answers in under a second."),
        ("The API answers but the response body is empty.",
         "The response was empty because the API key belongs to the sandbox. Use the "
         "production key from Settings, API, and the data appears."),
    ],
    "performance": [
        ("The {noun} takes minutes to load for us.",
         "Slow loading came from a very large saved view. I archived the old items and added "
         "an index on your workspace; the page loads in about two seconds now."),
        ("All we see is a blank screen when we open the {noun}.",
         "The blank screen is caused by an outdated browser extension. Please update the "
         "browser to the latest version and disable extensions, then reload."),
        ("The app crashes whenever I open the {noun}.",
         "The crash was a bug in the last release that our engineers fixed tonight. Please "
         "hard refresh with Ctrl and F5 to load the fixed version."),
        ("The spinner keeps turning and nothing ever appears.",
         "A stuck background job held the workspace. I restarted the job for your workspace "
         "and the data loads again; no data was lost."),
        ("The browser uses several gigabytes of memory with the {noun} open.",
         "The memory use came from live updates piling up in a long-open tab. Reload the tab "
         "once a day, and turn on the lighter live mode in Settings, Display."),
        ("The {noun} shows data that is hours old.",
         "The sync service for your region was delayed. It has caught up now; if data looks "
         "old again, use Refresh data in the menu to force a sync."),
        ("The browser tab freezes and we have to close it.",
         "The freeze comes from hardware acceleration in your browser. Turn off hardware "
         "acceleration in the browser settings and restart the browser."),
    ],
    "mobile": [
        ("The mobile app closes immediately after I start it.",
         "The crash on startup is fixed in version 5.2. Please update the app from the store; "
         "if it still crashes, reinstall it, your data is kept on our side."),
        ("I no longer get any push notifications on my phone.",
         "Notifications were turned off for the app in the phone settings. Enable them under "
         "Settings, Notifications, and allow background refresh for the app."),
        ("The app shows only a white screen after the splash.",
         "The white screen comes from a corrupted local cache. Clear the app cache in the "
         "phone settings, or reinstall the app, and sign in again."),
        ("Since the update the app drains my battery within hours.",
         "Background sync was set to every minute. Set sync to every 15 minutes in the app "
         "settings and the battery use goes back to normal."),
        ("The store offers no newer version than the one I have.",
         "Your phone's system version is too old for the newest app. Update the operating "
         "system first; the app update then shows in the store."),
        ("Changes I make offline clash with the ones from my laptop.",
         "The sync conflict came from editing the same item offline on two devices. Open the "
         "item and choose which version to keep; turn on conflict alerts in the settings."),
    ],
}  # fmt: skip
FAMILY_FOCUS = 0.8  # share of the symptom mentions in a family's ticket that name its own
FAMILY_TOLD = 0.9  # share of the descriptions that start with the family's own sentence
FIX_NOISE = 0.15  # share of the resolving replies that are not the family's fix
assert all(len(FAMILIES[t]) == len(TOPICS[t][2]) for t in TOPICS)
# Words in a large part of the corpus (the worst case for ranking every match).
COMMON_WORDS = ["please", "thanks", "issue", "check", "engineers", "screenshot"]
PLANS = ["starter", "team", "business", "enterprise"]
TAGS = ["billing", "api", "accounts", "bug", "feature-request", "mobile", "sso", "export",
        "refund", "vip", "onboarding", "performance"]  # fmt: skip
FIRST = ["Maria", "James", "Aiko", "Lars", "Fatima", "Chen", "Olga", "Pedro", "Amara", "Noah",
         "Ingrid", "Ravi", "Sofia", "Tomasz", "Lea", "Omar", "Hannah", "Kofi", "Elena", "Jonas",
         "Priya", "Mateo", "Yuki", "Zainab", "Luca", "Ana", "Erik", "Mei", "Ibrahim",
         "Clara"]  # fmt: skip
LAST = ["Garcia", "Smith", "Tanaka", "Nilsson", "Khan", "Wei", "Ivanova", "Silva", "Okafor",
        "Brown", "Berg", "Patel", "Rossi", "Nowak", "Martin", "Haddad", "Schmidt", "Mensah",
        "Popescu", "Weber", "Sharma", "Lopez", "Sato", "Bello", "Conti", "Santos", "Larsen",
        "Lin", "Yusuf", "Fischer"]  # fmt: skip
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne",
             "Wonka", "Tyrell", "Cyberdyne", "Soylent", "Aperture", "Monarch", "Pied Piper",
             "Massive Dynamic", "Oscorp", "Gringotts", "Nakatomi", "Dunder Mifflin"]  # fmt: skip


class Writer:
    """Random support-desk text, topic by topic (seeded)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.refs = 0

    def _fill(self, template: str, topic: str, family: int | None = None) -> str:
        nouns, verbs, symptoms = TOPICS[topic]
        rng = self.rng
        noun, noun2 = rng.sample(nouns, 2)
        verb, symptom = rng.choice(verbs), rng.choice(symptoms)
        if family is not None and rng.random() < FAMILY_FOCUS:
            symptom = symptoms[family]
        values = {
            "noun": noun,
            "Noun": noun[0].upper() + noun[1:],
            "noun2": noun2,
            "verb": verb,
            "symptom": symptom,
            "count": str(rng.randint(2, 40)),
            "rare": rng.choice(RARE),
            "plan": rng.choice(PLANS),
        }
        if "{ref}" in template:
            self.refs += 1
            values["ref"] = f"{rng.choice(['INV', 'ORD', 'CASE'])}-{rng.randint(100000, 999999)}"
        return template.format(**values)

    def subject(self, topic: str, family: int | None = None) -> str:
        return self._fill(self.rng.choice(SUBJECTS), topic, family)

    def text(self, lines: list[str], topic: str, n: int, family: int | None = None) -> str:
        rng = self.rng
        out = [self._fill(rng.choice(lines), topic, family) for _ in range(n)]
        if rng.random() < 0.04:  # the odd rare term outside the templates
            out.append(f"We also use {rng.choice(RARE)}.")
        if rng.random() < 0.5:
            out.insert(0, rng.choice(["Hello,", "Hi team,", "Good morning,", "Dear support,"]))
        return " ".join(out)

    def description(self, topic: str, family: int | None) -> str:
        """A new ticket's text: a family's ticket mostly starts with the family's sentence."""
        rng = self.rng
        text = self.text(CUSTOMER_LINES, topic, rng.randint(1, 4), family)
        if family is not None and rng.random() < FAMILY_TOLD:
            text = f"{self._fill(FAMILIES[topic][family][0], topic)} {text}"
        return text

    def resolution(self, topic: str, family: int) -> str:
        """The reply that resolves a family's ticket: mostly the family's fix, in a few
        words of its own around it; sometimes (``FIX_NOISE``) any reply."""
        rng = self.rng
        if rng.random() < FIX_NOISE:
            return self.text(AGENT_LINES, topic, rng.randint(1, 3), family)
        out = [FAMILIES[topic][family][1]]
        if rng.random() < 0.5:
            out.insert(0, rng.choice(["Hello,", "Hi,", "Thanks for your patience."]))
        if rng.random() < 0.3:
            out.append(self._fill(rng.choice(AGENT_LINES), topic, family))
        return " ".join(out)


# ------------------------------------------------------------------------------ database
PG_SHOW = (
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "synchronous_commit",
    "fsync",
    "max_connections",
    "autovacuum",
)


def finish(db: Database, keep: bool) -> None:
    """Close this process's connections, then drop or stop what ``start_database`` made."""
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    with contextlib.suppress(Exception):
        from command_api.application import close_application

        close_application()
    stop_database(db, keep=keep)


SECRET_KEY = secrets.token_urlsafe(48)  # the bench signs the tokens the server checks


def setup_django(db: Database) -> None:
    os.environ["DATABASE_URL"] = db.url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DESKSTREAM_DEBUG"] = "1"
    os.environ["DESKSTREAM_SECRET_KEY"] = SECRET_KEY
    os.environ["DESKSTREAM_GROUP_COMMIT"] = "0"  # the bench appends its own big batches
    os.environ["DESKSTREAM_PROJECTORS_IN_PROCESS"] = "0"
    os.environ["DESKSTREAM_ACCESS_TTL_SECONDS"] = "86400"  # tokens outlive the run
    for name in ("DESKSTREAM_PROJECTION_BATCH_SIZE", "DESKSTREAM_REDIS_URL"):
        os.environ.pop(name, None)
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    # Measure as production runs: DEBUG would wrap every cursor in Django's query log.
    settings.DEBUG = False
    call_command("migrate", verbosity=0)


def query(text: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(text, params)
        return list(cur.fetchall()) if cur.description else []


def execute(text: str, params: Any = None) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(text, params)


def vacuum_analyze(table: str) -> float:
    """VACUUM (ANALYZE) ``table`` outside a transaction; returns the seconds it took."""
    from django.db import connection

    t0 = time.perf_counter()
    connection.ensure_connection()
    with connection.cursor() as cur:
        cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)).as_string(None))
    return time.perf_counter() - t0


def meta_get(key: str) -> Any:
    execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
    rows = query("SELECT value FROM bench_meta WHERE key = %s", [key])
    if not rows:
        return None
    value = rows[0][0]
    return json.loads(value) if isinstance(value, str) else value


def meta_put(key: str, value: Any) -> None:
    execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
    execute(
        "INSERT INTO bench_meta (key, value) VALUES (%s, %s::jsonb) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
        [key, json.dumps(value)],
    )


# ------------------------------------------------------------------------------ generation
@dataclass
class People:
    customers: list[str]  # user ids (as the events carry them)
    agents: list[str]


def create_people(n_customers: int, n_agents: int, rng: random.Random) -> People:
    """Customer and agent accounts (customers' names, e-mails, companies are searchable)."""
    from django.db import transaction

    from domain.agent import agent_id_for_user
    from infra.auth.models import AgentProfile, CustomerProfile, User

    with transaction.atomic():
        users = []
        for i in range(n_customers):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = rng.choice(COMPANIES)
            users.append(
                User(
                    username=f"customer{i}",
                    email=f"{first}.{last}.{i}@{company.lower().replace(' ', '')}.example".lower(),
                    first_name=first,
                    last_name=last,
                    role=User.Role.CUSTOMER,
                    password="!",  # noqa: S106 - unusable password
                )
            )
        for i in range(n_agents):
            users.append(
                User(
                    username=f"agent{i}",
                    email=f"agent{i}@deskstream.example",
                    first_name=rng.choice(FIRST),
                    last_name=rng.choice(LAST),
                    role=User.Role.AGENT,
                    password="!",  # noqa: S106
                )
            )
        created = User.objects.bulk_create(users, batch_size=2000)
        customers = [u for u in created if u.role == User.Role.CUSTOMER]
        agents = [u for u in created if u.role == User.Role.AGENT]
        CustomerProfile.objects.bulk_create(
            [
                CustomerProfile(
                    user=u,
                    company=f"{rng.choice(COMPANIES)} {rng.choice(['Ltd', 'GmbH', 'Inc', 'SA'])}",
                    phone=f"+{rng.randint(1, 49)} {rng.randint(100, 999)} "
                    f"{rng.randint(1000000, 9999999)}",
                )
                for u in customers
            ],
            batch_size=2000,
        )
        AgentProfile.objects.bulk_create(
            [
                AgentProfile(user=u, title="Support agent", agent_id=agent_id_for_user(str(u.pk)))
                for u in agents
            ]
        )
    return People([str(u.pk) for u in customers], [str(u.pk) for u in agents])


class SimulatedClock:
    """Event timestamps spread over the past ``days`` days, in log order."""

    def __init__(self, days: int, expected_events: int) -> None:
        self.end = datetime.now(UTC)
        self.start = self.end - timedelta(days=days)
        self.step = (self.end - self.start) / max(expected_events, 1)
        self.now = self.start

    def __call__(self) -> datetime:
        # Past the expected count, ever smaller steps: never many events at one instant.
        self.now += min(self.step, (self.end - self.now) / 1000)
        return self.now


@contextlib.contextmanager
def simulated_time(clock: SimulatedClock) -> Iterator[None]:
    from domain.agent import Agent
    from domain.ticket import Ticket

    classes = (Ticket.Event, Agent.Event)
    for cls in classes:
        cls.create_timestamp = staticmethod(clock)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for cls in classes:
            del cls.create_timestamp


@dataclass
class GenStats:
    tickets: int = 0
    messages: int = 0
    internal: int = 0
    events: int = 0
    saves: int = 0
    refused: int = 0
    seconds: float = 0.0
    domain_seconds: float = 0.0
    save_seconds: float = 0.0
    people_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def message_counts(rng: random.Random, tickets: int, messages: int) -> list[int]:
    """Messages per ticket: skewed (many short threads, some long), summing to ``messages``."""
    mean = messages / tickets
    counts = [max(0, round(rng.gammavariate(1.6, mean / 1.6))) for _ in range(tickets)]
    diff = messages - sum(counts)
    while diff:
        i = rng.randrange(tickets)
        if diff > 0:
            counts[i] += 1
            diff -= 1
        elif counts[i] > 0:
            counts[i] -= 1
            diff += 1
    return counts


def ticket_story(
    customer: str,
    agents: list[str],
    n_messages: int,
    writer: Writer,
    stats: GenStats,
    families: bool = False,
) -> Iterator[Any]:
    """One ticket's life, one domain command per step (yields the ticket after each). With
    ``families``, the ticket belongs to one of its topic's ``FAMILIES``, which its text
    mostly names, and its agent posts the family's fix before resolving it."""
    from domain.errors import DomainError
    from domain.lifecycle import Role, Status
    from domain.ticket import Ticket

    rng = writer.rng
    topic = rng.choice(TOPIC_NAMES)
    family = rng.randrange(len(FAMILIES[topic])) if families else None
    # A family's ticket decides up front whether it will be resolved: its fix is then one of
    # its ``n_messages`` (the corpus keeps its size).
    resolves = rng.random() < 0.8 if families else None
    fix_slot = int(bool(resolves) and n_messages > 0)
    tags = rng.sample(TAGS, k=rng.choice([0, 1, 1, 2, 2, 3]))
    if topic in TAGS and rng.random() < 0.6 and topic not in tags:
        tags.append(topic)
    ticket = Ticket.open(
        customer_id=customer,
        subject=writer.subject(topic, family),
        description=writer.description(topic, family),
        priority=rng.choices(["low", "medium", "high", "urgent"], [25, 45, 22, 8])[0],
        tags=tags,
        language="en",
        actor_id=customer,
        actor_role=Role.CUSTOMER,
    )
    stats.tickets += 1
    yield ticket

    def attempt(command: Callable[..., None], **kwargs: Any) -> bool:
        try:
            command(**kwargs)
        except DomainError:
            stats.refused += 1
            return False
        return True

    agent: str | None = None
    assign_at = rng.choice([0, 0, 1, 1, 2]) if rng.random() < 0.92 else n_messages + 1
    for k in range(n_messages - fix_slot):
        if agent is None and k >= assign_at:
            new_agent = rng.choice(agents)
            if attempt(
                ticket.assign,
                agent_id=new_agent,
                actor_id="system",
                actor_role=Role.SYSTEM,
                policy="round_robin",
            ):
                agent = new_agent
                yield ticket
                if rng.random() < 0.8 and attempt(
                    ticket.change_status,
                    target="in_progress",
                    actor_id=agent,
                    actor_role=Role.AGENT,
                ):
                    yield ticket
        if agent is not None and (k % 2 == 0 or rng.random() < 0.3):
            internal = rng.random() < 0.36  # ~20 % of all messages
            lines = INTERNAL_LINES if internal else AGENT_LINES
            if attempt(
                ticket.post_message,
                author_id=agent,
                author_role=Role.AGENT,
                body=writer.text(lines, topic, rng.randint(1, 3), family),
                internal=internal,
            ):
                stats.messages += 1
                stats.internal += internal
                yield ticket
                if (
                    not internal
                    and ticket.status is Status.IN_PROGRESS
                    and rng.random() < 0.35
                    and attempt(
                        ticket.change_status,
                        target="waiting_on_customer",
                        actor_id=agent,
                        actor_role=Role.AGENT,
                    )
                ):
                    yield ticket
        elif attempt(
            ticket.post_message,
            author_id=customer,
            author_role=Role.CUSTOMER,
            body=writer.text(CUSTOMER_LINES, topic, rng.randint(1, 3), family),
        ):
            stats.messages += 1
            yield ticket
        roll = rng.random()
        if agent is not None and roll < 0.05:
            if roll < 0.02:
                ok = attempt(
                    ticket.change_priority,
                    priority=rng.choice(["low", "medium", "high", "urgent"]),
                    actor_id=agent,
                    actor_role=Role.AGENT,
                )
            elif roll < 0.035:
                ok = attempt(
                    ticket.edit,
                    actor_id=agent,
                    actor_role=Role.AGENT,
                    tags=sorted({*ticket.tags, rng.choice(TAGS)}),
                )
            elif roll < 0.045:
                other = rng.choice(agents)
                ok = other != agent and attempt(
                    ticket.assign,
                    agent_id=other,
                    actor_id=agent,
                    actor_role=Role.AGENT,
                    reason="reassigned",
                )
                if ok:
                    agent = other
            else:
                ok = attempt(ticket.unassign, actor_id=agent, actor_role=Role.AGENT)
                if ok:
                    agent = None
                    assign_at = k + 1
            if ok:
                yield ticket
        elif roll < 0.06 and attempt(
            ticket.change_status,
            target="resolved",
            actor_id=agent or customer,
            actor_role=Role.AGENT if agent else Role.CUSTOMER,
        ):
            yield ticket  # resolved mid-thread: the customer's next reply reopens it
    if rng.random() < 0.8 if resolves is None else resolves:
        if fix_slot and family is not None:
            if agent is not None and ticket.status is not Status.RESOLVED:
                author, role, body = agent, Role.AGENT, writer.resolution(topic, family)
            else:  # no agent to post the fix: the slot is the customer's
                body = writer.text(CUSTOMER_LINES, topic, rng.randint(1, 3), family)
                author, role = customer, Role.CUSTOMER
            if attempt(ticket.post_message, author_id=author, author_role=role, body=body):
                stats.messages += 1
                yield ticket
        if ticket.status is not Status.RESOLVED and attempt(
            ticket.change_status,
            target="resolved",
            actor_id=agent or customer,
            actor_role=Role.AGENT if agent else Role.CUSTOMER,
        ):
            yield ticket
        if rng.random() < 0.6 and attempt(
            ticket.change_status, target="closed", actor_id="system", actor_role=Role.SYSTEM
        ):
            yield ticket


def generate(
    app: Any,
    people: People,
    tickets: int,
    messages: int,
    seed: int,
    args: argparse.Namespace,
    families: bool = False,
) -> GenStats:
    """Interleave many tickets' stories and append their events in big transactions (with
    ``families``, tickets in issue families: ``ticket_story``)."""
    from domain.agent import Agent

    rng = random.Random(seed)
    writer = Writer(rng)
    stats = GenStats()
    counts = message_counts(rng, tickets, messages)
    # About seven events per ticket besides its messages (opened, assigned, status changes...).
    expected = tickets * 7 + messages + len(people.agents) * 2
    clock = SimulatedClock(HISTORY_DAYS, expected)
    buffer: list[Any] = []
    started = time.perf_counter()

    def flush() -> None:
        if not buffer:
            return
        t0 = time.perf_counter()
        app.save(*buffer)
        stats.save_seconds += time.perf_counter() - t0
        stats.events += len(buffer)
        stats.saves += 1
        buffer.clear()

    with simulated_time(clock):
        for user_id in people.agents:
            agent = Agent.register(
                user_id=user_id,
                name=f"Agent {user_id}",
                capacity=rng.randint(5, 25),
                skills=rng.sample(TOPIC_NAMES, 2),
                languages=["en"],
            )
            agent.set_availability("online")
            buffer.extend(agent.collect_events())
        flush()
        pool: list[Iterator[Any]] = []
        upcoming = iter(counts)
        remaining = tickets
        last_report = time.perf_counter()
        while pool or remaining:
            while remaining and len(pool) < args.window:
                pool.append(
                    ticket_story(
                        rng.choice(people.customers),
                        people.agents,
                        next(upcoming),
                        writer,
                        stats,
                        families,
                    )
                )
                remaining -= 1
            i = rng.randrange(len(pool))
            try:
                ticket = next(pool[i])
            except StopIteration:
                pool[i] = pool[-1]
                pool.pop()
                continue
            buffer.extend(ticket.collect_events())
            if len(buffer) >= args.save_events:
                flush()
                if time.perf_counter() - last_report > 10:
                    last_report = time.perf_counter()
                    elapsed = last_report - started
                    log(
                        f"  generated {stats.tickets:,} tickets, {stats.messages:,} messages, "
                        f"{stats.events:,} events ({stats.events / elapsed:,.0f} events/s)"
                    )
        flush()
    stats.seconds = time.perf_counter() - started
    stats.domain_seconds = stats.seconds - stats.save_seconds
    return stats


# ------------------------------------------------------------------------------ CPU
class CpuMeter:
    """CPU seconds of this process and of the PostgreSQL backends serving this database."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.pg: dict[int, psutil.Process] = {}

    def _backends(self) -> None:
        rows = query("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        for (pid,) in rows:
            if pid not in self.pg:
                with contextlib.suppress(psutil.Error):
                    self.pg[pid] = psutil.Process(pid)

    def sample(self) -> tuple[float, dict[int, float]]:
        self._backends()
        t = self.me.cpu_times()
        pg: dict[int, float] = {}
        for pid, p in self.pg.items():
            with contextlib.suppress(psutil.Error):
                c = p.cpu_times()
                pg[pid] = c.user + c.system
        return t.user + t.system, pg

    @staticmethod
    def delta(
        a: tuple[float, dict[int, float]], b: tuple[float, dict[int, float]]
    ) -> tuple[float, float]:
        pg = sum(v - a[1].get(pid, v) for pid, v in b[1].items() if pid in a[1])
        return b[0] - a[0], pg


# ------------------------------------------------------------------------------ log reads
@dataclass
class ReadRow:
    label: str
    limit: int
    events: int
    seconds: float
    cpu_self: float
    cpu_pg: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def measure_reads(limits: list[int], passes: int) -> list[ReadRow]:
    from config.bootstrap import event_source

    source = event_source()
    recorder = source._recorder
    head = source.head()
    rows: list[ReadRow] = []
    meter = CpuMeter()

    def decoded(limit: int) -> int:
        after, n = 0, 0
        while after < head:
            batch = source.read(after, limit)
            if not batch:
                break
            n += len(batch)
            after = batch[-1].position
        return n

    def raw(limit: int) -> int:
        after, n = 0, 0
        while after < head:
            batch = recorder.select_notifications(
                start=after, limit=limit, inclusive_of_start=False
            )
            if not batch:
                break
            n += len(batch)
            after = batch[-1].id
        return n

    decoded(1000)  # warm: caches, hint bits, the pool's connection
    plan = [("decoded", lim) for lim in limits for _ in range(passes)]
    plan += [("raw rows", 1000)] * passes
    for label, limit in plan:
        c0 = meter.sample()
        t0 = time.perf_counter()
        n = decoded(limit) if label == "decoded" else raw(limit)
        secs = time.perf_counter() - t0
        cpu_self, cpu_pg = CpuMeter.delta(c0, meter.sample())
        rows.append(ReadRow(label, limit, n, secs, cpu_self, cpu_pg))
        log(f"  read {label:8s} limit {limit:5d}: {n:,} events in {secs:.1f}s = {n / secs:,.0f}/s")
    return rows


# ------------------------------------------------------------------------------ rebuilds
@dataclass
class RebuildRow:
    projector: str
    batch: int
    events: int
    seconds: float
    cpu_self: float
    cpu_pg: float
    rows_after: dict[str, int] = field(default_factory=dict)
    dead_after: dict[str, int] = field(default_factory=dict)  # dead row versions left

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class StatementCpu:
    """PostgreSQL CPU per statement while it is installed: the CPU time of the backend of
    Django's connection (the projection store's) before and after each statement, read from
    /proc (10 ms ticks: exact summed over hundreds of batches, not per statement). Statements
    through Django's cursor are caught with ``execute_wrapper``; the stores' one-statement
    bulk writes (``infra.postgres.bulk``) by wrapping the names the adapters call."""

    def __init__(self) -> None:
        pid = int(query("SELECT pg_backend_pid()")[0][0])
        self.backend = psutil.Process(pid)
        self.stats: dict[str, list[float]] = {}  # label -> [statements, cpu seconds, rows]

    def _cpu(self) -> float:
        t = self.backend.cpu_times()
        return float(t.user + t.system)

    def _add(self, label: str, seconds: float, rows: int) -> None:
        entry = self.stats.setdefault(label, [0, 0.0, 0])
        entry[0] += 1
        entry[1] += seconds
        entry[2] += rows

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from django.db import connection

        from infra.postgres import readmodels
        from infra.postgres import search as pg_search

        patched: list[tuple[Any, str, Any]] = []

        def wrap(module: Any, fname: str) -> None:
            inner = getattr(module, fname)

            def timed(cursor: Any, table: str, *args: Any, **kwargs: Any) -> Any:
                c0 = self._cpu()
                try:
                    return inner(cursor, table, *args, **kwargs)
                finally:
                    rows = args[2] if fname == "update_rows" else args[1]
                    kind = ""
                    if fname == "update_rows":
                        kind = f", all documents of each {args[0]} (rows: {args[0]}s)"
                    elif rows and isinstance(rows[0], dict) and "kind" in rows[0]:
                        kind = f" {rows[0]['kind']} documents"
                    verb = "UPDATE" if fname == "update_rows" else "INSERT"
                    conflict = kwargs.get("on_conflict")
                    if conflict is not None and "DO UPDATE" in conflict.as_string(None):
                        verb = "UPSERT"
                    table_name = table.removesuffix("__rebuild")
                    self._add(f"{verb} {table_name}{kind} (bulk)", self._cpu() - c0, len(rows))

            setattr(module, fname, timed)
            patched.append((module, fname, inner))

        for module in (readmodels, pg_search):
            for fname in ("insert_rows", "update_rows"):
                if hasattr(module, fname):
                    wrap(module, fname)

        def wrapper(execute: Any, text: str, params: Any, many: bool, context: Any) -> Any:
            c0 = self._cpu()
            try:
                return execute(text, params, many, context)
            finally:
                label = " ".join(text.replace("__rebuild", "").split())
                label = re.sub(r"\((?:\s*\"?\w+\"?,){3,}[^)]*\)", "(...)", label)[:70]
                self._add(label, self._cpu() - c0, len(params) if many else 1)

        try:
            with connection.execute_wrapper(wrapper):
                yield
        finally:
            for module, fname, inner in patched:
                setattr(module, fname, inner)

    def top(self, limit: int = 8) -> list[tuple[str, int, float, int]]:
        entries = [(k, int(v[0]), v[1], int(v[2])) for k, v in self.stats.items()]
        return sorted(entries, key=lambda e: e[2], reverse=True)[:limit]


def run_rebuild(
    name: str,
    batch: int,
    profile: cProfile.Profile | None = None,
    statements: StatementCpu | None = None,
) -> RebuildRow:
    from config.bootstrap import event_source, store
    from projections.runner import rebuild

    source = event_source()
    live = store(name)
    head = source.head()
    meter = CpuMeter()
    last = [0.0]

    def progress(p: Any) -> None:
        if time.perf_counter() - last[0] > 15:
            last[0] = time.perf_counter()
            log(f"    {name} b={batch}: {p.done:,}/{p.total:,} ({p.rate:,.0f}/s)")

    c0 = meter.sample()
    t0 = time.perf_counter()
    with statements.installed() if statements else contextlib.nullcontext():
        if profile is not None:
            profile.enable()
        # swap_in takes the store's own shadow type, a narrower parameter than rebuild's.
        position = rebuild(
            source,
            live,
            live.shadow,
            live.swap_in,  # type: ignore[arg-type]
            batch_size=batch,
            on_progress=progress,
        )
        if profile is not None:
            profile.disable()
    secs = time.perf_counter() - t0
    cpu_self, cpu_pg = CpuMeter.delta(c0, meter.sample())
    source.close()
    row = RebuildRow(name, batch, position, secs, cpu_self, cpu_pg)
    for name_ in live.tables:
        count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name_)).as_string(None)
        row.rows_after[name_] = int(query(count)[0][0])
        dead = query(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass", [name_]
        )
        row.dead_after[name_] = int(dead[0][0]) if dead else 0
    if position < head:
        raise RuntimeError(f"{name} rebuilt to {position}, short of the head {head}")
    log(
        f"  rebuild {name:11s} batch {batch:5d}: {position:,} events in {secs:.1f}s = "
        f"{row.rate:,.0f}/s (cpu: bench {cpu_self:.1f}s, postgres {cpu_pg:.1f}s)"
    )
    return row


# Stages of a batch, by (file suffix, function): their cumulative time in the profile.
STAGES = [
    ("the whole rebuild", "projections/runner.py", "rebuild"),
    ("read the log (fetch + decode)", "infra/postgres/event_source.py", "read"),
    ("  of which decoding (mapper)", "eventsourcing/persistence.py", "to_domain_event"),
    ("preload the rows the batch touches", "", "preload"),
    ("projector logic (handler)", "", "handler"),
    ("write rows (flush)", "", "flush"),
    ("  of which encoding rows as JSON", "infra/postgres/bulk.py", "_document"),
    ("lock + advance the position", "infra/postgres/projection_store.py", "batch"),
]


def profile_stages(profile: cProfile.Profile) -> list[tuple[str, float]]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    out: list[tuple[str, float]] = []
    for label, suffix, func in STAGES:
        total = sum(
            ct
            for (filename, _line, name), (_cc, _nc, _tt, ct, _c) in stats.stats.items()  # type: ignore[attr-defined]
            if name == func
            and (filename.endswith(suffix) if suffix else "infra/postgres" in filename)
        )
        if total:
            out.append((label, total))
    return out


def profile_summary(profile: cProfile.Profile, limit: int = 10) -> list[tuple[str, float, float]]:
    """(function, own seconds, cumulative seconds) of the heaviest functions by own time."""
    stats = pstats.Stats(profile, stream=io.StringIO())
    entries = []
    for (filename, line, func), (_cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        path = filename
        for marker in ("site-packages/", str(BASE_DIR) + "/"):
            if marker in path:
                path = path.split(marker, 1)[1]
        where = f"{path}:{line}({func})" if line else func
        entries.append((where, tt, ct))
    entries.sort(key=lambda e: e[1], reverse=True)
    return entries[:limit]


# ------------------------------------------------------------------------------ search
@dataclass
class SearchCase:
    category: str
    text: str
    as_customer: bool
    filters: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.filters.items())
        who = "customer" if self.as_customer else "agent"
        return f"{self.text!r} ({who}{', ' + extra if extra else ''})"


def build_cases(rng: random.Random, people: People, n: int) -> list[SearchCase]:
    """A mix of ≥ ``n`` searches; texts from the corpus's vocabulary and its own tickets."""
    nouns = sorted({w for nouns, _, _ in TOPICS.values() for w in nouns})
    single = sorted({w for noun in nouns for w in noun.split() if len(w) > 3 and w.isalpha()})
    symptoms = [s for _, _, sy in TOPICS.values() for s in sy]
    cases: list[SearchCase] = []
    per = max(1, n // 10)
    for _ in range(per * 2):
        cases.append(SearchCase("one word", rng.choice(single), False))
    for _ in range(per):
        cases.append(SearchCase("two words", " ".join(rng.sample(single, 2)), False))
    for _ in range(per):
        noun = rng.choice([x for x in nouns if " " in x] or nouns)
        cases.append(SearchCase("quoted phrase", f'"{noun}"', False))
    for _ in range(per):
        words = rng.choice(symptoms).split()
        cases.append(SearchCase("two words", " ".join(words[-2:]), False))
    for _ in range(per):
        cases.append(SearchCase("product name", rng.choice(RARE), False))
    refs = [
        m.group(0)
        for (text,) in query(
            "SELECT body FROM rm_message WHERE body ~ '(INV|ORD|CASE)-[0-9]{6}' "
            "ORDER BY id LIMIT %s",
            [per * 4],
        )
        if (m := re.search(r"(INV|ORD|CASE)-\d{6}", text))
    ]
    for ref in rng.sample(refs, min(len(refs), per)):
        cases.append(SearchCase("reference number", ref, False))
    statuses = ["open", "in_progress", "waiting_on_customer", "resolved"]
    for _ in range(per * 2):
        filters: dict[str, Any] = {}
        roll = rng.random()
        if roll < 0.35:
            filters["status"] = (rng.choice(statuses),)
        elif roll < 0.6:
            filters["priority"] = tuple(rng.sample(["high", "urgent", "medium", "low"], 2))
        elif roll < 0.8:
            filters["tags"] = (rng.choice(TAGS),)
        else:
            filters["agent"] = rng.choice(people.agents)
            filters["status"] = ("in_progress", "waiting_on_customer")
        cases.append(SearchCase("filtered", rng.choice(single), False, filters))
    # Customers look for their own tickets: a word of one of their subjects, or any word.
    owners = query(
        "SELECT customer_id, subject FROM rm_ticket ORDER BY md5(id::text) LIMIT %s", [per * 2]
    )
    for customer, subject in owners:
        words = [w.strip(":,.").lower() for w in subject.split() if len(w) > 4]
        text = rng.choice(words) if words and rng.random() < 0.7 else rng.choice(single)
        cases.append(SearchCase("as customer", text, True, {"customer": customer}))  # the principal
    for _ in range(per // 2):
        cases.append(SearchCase("very common word", rng.choice(COMMON_WORDS), False))
    rng.shuffle(cases)
    return cases


def to_query(case: SearchCase, agent_user: str) -> Any:
    from domain.lifecycle import Role
    from projections.search import Principal, SearchQuery

    filters = dict(case.filters)
    customer = filters.pop("customer", None)
    principal = (
        Principal(Role.CUSTOMER, customer)
        if case.as_customer
        else Principal(Role.AGENT, agent_user)
    )
    return SearchQuery(text=case.text, principal=principal, **filters)


@dataclass
class Timed:
    case: SearchCase
    seconds: float
    hits: int  # matches over all kinds (the counts)


def search_direct(cases: list[SearchCase], agent_user: str, rounds: int) -> list[Timed]:
    from infra.postgres.search import PostgresSearchIndex

    index = PostgresSearchIndex()
    for case in cases[:20]:  # warm-up: connection, plans, the index pages of common words
        index.search(to_query(case, agent_user))
    out: list[Timed] = []
    for _ in range(rounds):
        for case in cases:
            q = to_query(case, agent_user)
            t0 = time.perf_counter()
            results = index.search(q)
            secs = time.perf_counter() - t0
            out.append(Timed(case, secs, sum(g.count for g in results.groups.values())))
    return out


def http_params(case: SearchCase) -> dict[str, str]:
    params = {"q": case.text}
    for key, value in case.filters.items():
        if key == "customer":
            continue
        params[key] = ",".join(value) if isinstance(value, tuple) else str(value)
    return params


def search_http(
    server: AppServer, cases: list[SearchCase], tokens: dict[str, str], agent_user: str, rounds: int
) -> list[Timed]:
    out: list[Timed] = []
    with httpx.Client(base_url=server.base, timeout=30.0) as client:

        def get(case: SearchCase) -> tuple[float, int]:
            user = case.filters.get("customer", agent_user)
            headers = {"Authorization": f"Bearer {tokens[user]}"}
            t0 = time.perf_counter()
            r = client.get("/api/search", params=http_params(case), headers=headers)
            secs = time.perf_counter() - t0
            r.raise_for_status()
            groups = r.json()["groups"]
            return secs, sum(g["count"] for g in groups.values())

        for case in cases[:20]:
            get(case)
        for _ in range(rounds):
            for case in cases:
                secs, hits = get(case)
                out.append(Timed(case, secs, hits))
    return out


# ------------------------------------------------------------------------------ server
def start_server(db: Database, logdir: Path) -> AppServer:
    """``python -m infra.server.launcher --no-demo``: projectors in process, not DEBUG."""
    return AppServer(
        logdir / "server.log",
        {
            "DATABASE_URL": db.url,
            "DESKSTREAM_SECRET_KEY": SECRET_KEY,
            "DESKSTREAM_DEMO": "0",
            "DESKSTREAM_PROJECTORS_IN_PROCESS": "1",
            "DESKSTREAM_EMAIL_OUTBOX_DIR": str(logdir / "outbox"),  # e-mails as files
        },
        ["--no-demo"],
        drop=lambda k: k in TUNING_VARS or k == "DESKSTREAM_DEBUG",
    )


def fast_forward_others(measured: tuple[str, ...]) -> list[str]:
    """Move every other projector to the head, so that the server started for the search
    measurements does not spend them catching up on the whole history (their tables stay
    empty; they only see the events that come after)."""
    from config.bootstrap import STORES, event_source

    source = event_source()
    head = source.head()
    source.close()
    others = sorted(set(STORES) - set(measured))
    for name in others:
        execute(
            "INSERT INTO projection_position (name, position, updated_at) VALUES (%s, %s, now())"
            " ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()",
            [name, head],
        )
    return others


def tokens_for(user_ids: list[str]) -> dict[str, str]:
    from infra.auth.models import User
    from infra.auth.tokens import start_session

    users = User.objects.in_bulk([int(u) for u in user_ids])
    return {str(pk): start_session(user).access for pk, user in users.items()}


# ------------------------------------------------------------------------------ freshness
@dataclass
class Fresh:
    seconds: list[float]
    polls: int
    missing: int
    command_ms: list[float]
    mode: str


def freshness_http(
    server: AppServer,
    n: int,
    customer: str,
    agent_user: str,
    tokens: dict[str, str],
    timeout: float,
) -> Fresh:
    """Post ``n`` messages with unique words, each found by search before the next is sent."""
    rng = random.Random(7)
    found: list[float] = []
    command_ms: list[float] = []
    polls = missing = 0
    with httpx.Client(base_url=server.base, timeout=30.0) as client:
        customer_h = {"Authorization": f"Bearer {tokens[customer]}"}
        agent_h = {"Authorization": f"Bearer {tokens[agent_user]}"}
        r = client.post(
            "/api/tickets",
            json={"subject": "Freshness probe", "description": "Messages for the benchmark."},
            headers=customer_h,
        )
        r.raise_for_status()
        ticket = r.json()["id"]
        for i in range(n):
            word = f"fresh{i}x{rng.randrange(16**8):08x}"
            t0 = time.perf_counter()
            r = client.post(
                f"/api/tickets/{ticket}/messages",
                json={"body": f"Probe message {word} for the search index."},
                headers=agent_h if i % 2 else customer_h,
            )
            answered = time.perf_counter()
            r.raise_for_status()
            command_ms.append((answered - t0) * 1000)
            deadline = answered + timeout
            while True:
                polls += 1
                s = client.get("/api/search", params={"q": word}, headers=agent_h)
                s.raise_for_status()
                if s.json()["groups"]["messages"]["count"] > 0:
                    found.append(time.perf_counter() - answered)
                    break
                if time.perf_counter() > deadline:
                    missing += 1
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.25))  # not back to back: an idle projector wakes
    return Fresh(found, polls, missing, command_ms, "HTTP")


def freshness_direct(n: int, customer: str, agent_user: str, timeout: float) -> Fresh:
    """Without a server: the search projector in a thread, commands through the application."""
    from command_api.application import Actor, get_application
    from config.bootstrap import runner
    from domain.lifecycle import Role
    from infra.postgres.search import PostgresSearchIndex
    from projections import search as search_projection
    from projections.search import Principal, SearchQuery

    app = get_application()
    stop = threading.Event()
    r = runner(search_projection.NAME)

    def follow() -> None:
        from django.db import connection

        try:
            r.run(stop)
        finally:
            r.source.close()  # type: ignore[attr-defined]
            connection.close()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    index = PostgresSearchIndex()
    rng = random.Random(7)
    found: list[float] = []
    command_ms: list[float] = []
    polls = missing = 0
    try:
        who = Actor(customer, Role.CUSTOMER)
        ticket = app.open_ticket(
            who, customer_id=customer, subject="Freshness probe", description="Probe."
        ).id
        principal = Principal(Role.AGENT, agent_user)
        for i in range(n):
            word = f"fresh{i}x{rng.randrange(16**8):08x}"
            t0 = time.perf_counter()
            app.post_message(ticket, who, body=f"Probe message {word} for the search index.")
            answered = time.perf_counter()
            command_ms.append((answered - t0) * 1000)
            while True:
                polls += 1
                res = index.search(SearchQuery(text=word, principal=principal))
                if res.group("message").count:
                    found.append(time.perf_counter() - answered)
                    break
                if time.perf_counter() > answered + timeout:
                    missing += 1
                    break
                time.sleep(0.01)
            time.sleep(rng.uniform(0.05, 0.25))
    finally:
        stop.set()
        thread.join(10)
    return Fresh(found, polls, missing, command_ms, "in process")


# ------------------------------------------------------------------------------ report
def corpus_info() -> dict[str, Any]:
    rows = query("SELECT topic, count(*) FROM deskstream_events GROUP BY topic ORDER BY 2 DESC")
    by_topic = {str(t).split(":", 1)[-1]: int(n) for t, n in rows}
    size = query(
        "SELECT pg_total_relation_size('deskstream_events'), "
        "(SELECT coalesce(avg(length(state)), 0) FROM deskstream_events), "
        "(SELECT count(*) FROM accounts_user WHERE role = 'customer'), "
        "(SELECT count(*) FROM accounts_user WHERE role = 'agent')"
    )[0]
    return {
        "events": sum(by_topic.values()),
        "by_topic": by_topic,
        "bytes": int(size[0]),
        "avg_state": float(size[1]),
        "customers": int(size[2]),
        "agents": int(size[3]),
    }


def table_sizes(tables: list[str]) -> dict[str, int]:
    out = {}
    for t in tables:
        rows = query("SELECT pg_total_relation_size(%s::regclass)", [t])
        out[t] = int(rows[0][0]) if rows else 0
    return out


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


@dataclass
class Report:
    db: Database
    args: argparse.Namespace
    loadavg: tuple[float, float, float]
    background_cpu: float
    corpus: dict[str, Any]
    gen: dict[str, Any] | None
    gen_reused: bool
    reads: list[ReadRow]
    rebuilds: list[RebuildRow]
    sizes: dict[str, int]
    analyze_seconds: float
    cases: list[SearchCase]
    direct: list[Timed]
    http: list[Timed]
    fresh: Fresh | None
    profiles: dict[str, list[tuple[str, float, float]]]
    statement_cpu: dict[str, list[tuple[str, int, float, int]]]
    stages: dict[str, list[tuple[str, float]]]
    load_during: dict[str, float]


def latency_rows(timed: list[Timed]) -> list[tuple[str, int, float, float, float, float]]:
    """(category, n, p50 ms, p95 ms, max ms, median matches) per category, then all."""
    by: dict[str, list[Timed]] = {}
    for t in timed:
        by.setdefault(t.case.category, []).append(t)
    order = sorted(by, key=lambda c: percentile([t.seconds for t in by[c]], 50))
    rows = []
    for cat in [*order, "all"]:
        items = timed if cat == "all" else by[cat]
        secs = [t.seconds * 1000 for t in items]
        rows.append(
            (
                cat,
                len(items),
                percentile(secs, 50),
                percentile(secs, 95),
                max(secs) if secs else float("nan"),
                percentile([float(t.hits) for t in items], 50),
            )
        )
    return rows


def build_results(r: Report) -> dict[str, Any]:
    """The results document: the run and its tables (no interpretation)."""
    from importlib.metadata import version

    c = r.corpus
    best_read: dict[int, float] = {}
    for read in r.reads:
        if read.label == "decoded":
            best_read[read.limit] = max(best_read.get(read.limit, 0.0), read.rate)
    read_1000 = best_read.get(1000) or max(best_read.values())
    raw = max((x.rate for x in r.reads if x.label == "raw rows"), default=float("nan"))
    best: dict[str, RebuildRow] = {}
    for rebuild_row in r.rebuilds:
        if rebuild_row.projector not in best or rebuild_row.rate > best[rebuild_row.projector].rate:
            best[rebuild_row.projector] = rebuild_row
    direct_all = [t.seconds * 1000 for t in r.direct]
    http_all = [t.seconds * 1000 for t in r.http]
    rate, ms = ",.0f", ",.1f"
    tables: list[dict[str, Any]] = []

    # ---------------------------------------------------------------- targets
    targets: list[list[Any]] = []
    for name in PROJECTORS:
        if name in best:
            b = best[name]
            targets.append(
                [
                    f"rebuild `{name}` ≥ {TARGET_REBUILD:,.0f} events/s",
                    f"{b.rate:,.0f} events/s (batch {b.batch}; {b.rate / read_1000:.2f}x the log "
                    "read)",
                    b.rate >= TARGET_REBUILD,
                ]
            )
    for label, values, what in (
        ("search port", direct_all, "searches"),
        ("`GET /api/search`", http_all, "requests"),
    ):
        if values:
            p95 = percentile(values, 95)
            targets.append(
                [
                    f"search p95 < {TARGET_SEARCH_P95_MS:.0f} ms ({label}, {len(values)} {what})",
                    f"p50 {percentile(values, 50):,.1f} ms, p95 {p95:,.1f} ms",
                    p95 < TARGET_SEARCH_P95_MS,
                ]
            )
    f = r.fresh
    if f:
        fresh_p95 = percentile(f.seconds, 95)
        targets.append(
            [
                f"new message searchable < {TARGET_FRESH_P95_S:.0f} s after its command, p95 "
                f"({f.mode}, {len(f.seconds) + f.missing} messages)",
                f"p50 {percentile(f.seconds, 50) * 1000:,.0f} ms, p95 {fresh_p95 * 1000:,.0f} ms, "
                f"max {max(f.seconds, default=0) * 1000:,.0f} ms, {f.missing} not found",
                fresh_p95 < TARGET_FRESH_P95_S and f.missing == 0,
            ]
        )
    tables.append(
        table(
            "Against the targets", [column("Target"), column("Measured"), column("Met?")], targets
        )
    )

    # ---------------------------------------------------------------- corpus
    bt = c["by_topic"]
    corpus = [
        ["Tickets", f"{bt.get('TicketOpened', 0):,}"],
        ["Messages", f"{bt.get('MessagePosted', 0):,}"],
        ["Customers", f"{c['customers']:,}"],
        ["Agents", f"{c['agents']:,}"],
        ["Events in the log", f"{c['events']:,}"],
        ["Log size with indexes", mib(c["bytes"])],
        ["JSON per event (average)", f"{c['avg_state']:,.0f} bytes"],
        ["Events by type", ", ".join(f"{t} {n:,}" for t, n in bt.items())],
    ]
    if r.gen and c["events"] > r.gen["events"]:
        corpus.append(["Appended after the generation (earlier runs' probes)",
                       f"{c['events'] - r.gen['events']:,}"])  # fmt: skip
    tables.append(table("Corpus", [column("What"), column("Value")], corpus))
    if r.gen:
        g = r.gen
        tables.append(
            table(
                "Generation"
                + (" (an earlier run with the same parameters, `--reuse`)" if r.gen_reused else ""),
                [column("What"), column("Value")],
                [
                    ["Events", f"{g['events']:,}"],
                    ["Seconds, end to end", f"{g['seconds']:.0f}"],
                    ["Events/s, end to end", f"{g['rate']:,.0f}"],
                    ["Transactions (`app.save(*events)`)", f"{g['saves']:,}"],
                    ["Events per transaction, at most", f"{g['save_events']:,}"],
                    ["Tickets in progress at once, at most", f"{g['window']:,}"],
                    [
                        "Seconds in the domain methods and text generation",
                        f"{g['domain_seconds']:.0f}",
                    ],
                    ["Seconds in `app.save`", f"{g['save_seconds']:.0f}"],
                    ["Events/s appended", f"{g['events'] / g['save_seconds']:,.0f}"],
                    ["Seconds for the accounts", f"{g['people_seconds']:.1f}"],
                    ["Internal notes", f"{g['internal'] / g['messages']:.0%} of messages"],
                    ["Commands the domain refused (skipped)", f"{g['refused']}"],
                ],
            )
        )

    # ---------------------------------------------------------------- reads + rebuilds
    rows: list[list[Any]] = []
    for x in r.reads:
        rows.append([f"read, {x.label}", x.limit, x.events, x.seconds, x.rate, x.rate / read_1000,
                     x.cpu_self, x.cpu_pg, (x.cpu_self + x.cpu_pg) / x.seconds])  # fmt: skip
    for y in r.rebuilds:
        rows.append([f"rebuild `{y.projector}`", y.batch, y.events, y.seconds, y.rate,
                     y.rate / read_1000, y.cpu_self, y.cpu_pg,
                     (y.cpu_self + y.cpu_pg) / y.seconds])  # fmt: skip
    tables.append(
        table(
            "Ceiling and rebuilds",
            [
                column("What"),
                column("Batch", ",d"),
                column("Events", ",d"),
                column("Seconds", ".1f"),
                column("Events/s", rate),
                column("vs log read", "{:.2f}x"),
                column("CPU bench s", ".1f"),
                column("CPU PG s", ".1f"),
                column("Cores", ".2f"),
            ],
            rows,
        )
    )
    tables.append(
        table(
            "Best rebuild against the ceiling (decoded log read at limit 1,000)",
            [
                column("Projector"),
                column("Best rebuild events/s", rate),
                column("Log read events/s", rate),
                column("vs log read", "{:.2f}x"),
                column(f"vs the library's runner (~{LIBRARY_RUNNER_RATE}/s)", "{:.0f}x"),
            ],
            [
                [f"`{n}`", b.rate, read_1000, b.rate / read_1000, b.rate / LIBRARY_RUNNER_RATE]
                for n, b in best.items()
            ],
        )
    )
    before: list[list[Any]] = []
    for name, (then, pg_cpu, bench_cpu) in BEFORE_BULK.items():
        now = [x for x in r.rebuilds if x.projector == name and x.batch == 1000]
        if now and r.args.tickets == 20_000 and r.args.messages == 200_000:
            z = now[0]
            before.append([f"`{name}`", then, pg_cpu, bench_cpu, z.rate, z.cpu_pg, z.cpu_self,
                           z.rate / then])  # fmt: skip
    tables.append(
        table(
            "Batch 1,000 before the stores wrote one statement per table (`infra/postgres/bulk.py`;"
            " the first full run of this bench, same corpus) and now",
            [
                column("Projector"),
                column("Before events/s", rate),
                column("Before PG CPU s", ".0f"),
                column("Before bench CPU s", ".0f"),
                column("Now events/s", rate),
                column("Now PG CPU s", ".0f"),
                column("Now bench CPU s", ".0f"),
                column("Now / before", "{:.2f}x"),
            ],
            before,
        )
    )
    tables.append(
        table(
            "Decoding",
            [
                column("Raw rows/s", rate),
                column("Decoded/s", rate),
                column("Decoding µs per event", ",.0f"),
                column("Fetching µs per event", ",.0f"),
            ],
            [[raw, read_1000, (1 / read_1000 - 1 / raw) * 1e6, 1e6 / raw]],
        )
    )
    rows_after = {t: n for x in r.rebuilds for t, n in x.rows_after.items()}
    dead_after = {t: n for x in r.rebuilds for t, n in x.dead_after.items()}
    tables.append(
        table(
            "Rows after the rebuilds",
            [
                column("Table"),
                column("Rows", ",d"),
                column("MiB", ",.0f"),
                column("Dead rows", ",d"),
            ],
            [
                [f"`{t}`", n, r.sizes.get(t, 0) / 2**20, dead_after.get(t, 0)]
                for t, n in rows_after.items()
            ],
        )
    )
    for name in r.profiles:
        tables.append(
            table(
                f"`{name}`: stages of one more rebuild at batch 1,000 (wall s, under cProfile)",
                [column("Stage"), column("Seconds", ".1f")],
                [
                    [label.replace("  ", "&nbsp;&nbsp;"), secs]
                    for label, secs in r.stages.get(name, [])
                ],
            )
        )
        tables.append(
            table(
                f"`{name}`: PostgreSQL CPU by statement (the same rebuild)",
                [
                    column("Statement"),
                    column("Statements", ",d"),
                    column("Rows", ",d"),
                    column("PostgreSQL CPU s", ".1f"),
                    column("µs per row", ",.0f"),
                ],
                [
                    [
                        f"`{label}`",
                        n,
                        rows_n,
                        secs,
                        secs / rows_n * 1e6 if label.endswith("(bulk)") and rows_n else None,
                    ]
                    for label, n, secs, rows_n in r.statement_cpu.get(name, [])
                ],
            )
        )
        tables.append(
            table(
                f"`{name}`: heaviest functions by own time (the same rebuild, profiled)",
                [column("Function"), column("Own s", ".2f"), column("Cumulative s", ".2f")],
                [[f"`{where}`", own, cum] for where, own, cum in r.profiles[name]],
            )
        )

    # ---------------------------------------------------------------- search
    http_rows = {row[0]: row for row in latency_rows(r.http)} if r.http else {}
    search_rows = []
    for cat, n, p50, p95, mx, hits in latency_rows(r.direct) if r.direct else []:
        h = http_rows.get(cat)
        search_rows.append([f"**{cat}**" if cat == "all" else cat, n, p50, p95, mx,
                            h[2] if h else None, h[3] if h else None, hits])  # fmt: skip
    tables.append(
        table(
            f"Search latency ({len(r.cases)} searches, each run {r.args.rounds} times)",
            [
                column("Category"),
                column("Searches", ",d"),
                column("Direct p50 ms", ms),
                column("Direct p95 ms", ms),
                column("Direct max ms", ms),
                column("HTTP p50 ms", ms),
                column("HTTP p95 ms", ms),
                column("Counted (median)", ",.0f"),
            ],
            search_rows,
        )
    )
    slow = sorted(r.direct, key=lambda t: t.seconds, reverse=True)[:5]
    tables.append(
        table(
            "Slowest direct searches",
            [column("Search"), column("ms", ",.0f"), column("Counted", ",d")],
            [[t.case.label(), t.seconds * 1000, t.hits] for t in slow],
        )
    )
    if f:
        tables.append(
            table(
                "Freshness: a new message in the search results (command return to found)",
                [
                    column("Messages", "d"),
                    column("Through"),
                    column("p50 ms", ",.0f"),
                    column("p95 ms", ",.0f"),
                    column("max ms", ",.0f"),
                    column("Not found", "d"),
                    column("Searches per message", ".1f"),
                    column("Command p50 ms", ",.1f"),
                ],
                [
                    [
                        len(f.seconds) + f.missing,
                        f.mode,
                        percentile(f.seconds, 50) * 1000,
                        percentile(f.seconds, 95) * 1000,
                        max(f.seconds, default=0) * 1000,
                        f.missing,
                        f.polls / max(len(f.seconds), 1),
                        percentile(f.command_ms, 50),
                    ]
                ],
            )
        )

    st = r.db.settings
    setup = {
        "PostgreSQL": f"{r.db.version} ({r.db.kind}; "
        + ", ".join(
            f"{k}={st.get(k)}"
            for k in ("shared_buffers", "work_mem", "synchronous_commit", "fsync", "autovacuum")
        )
        + ")",
        "eventsourcing": version("eventsourcing"),
        "Load average before the run (1/5/15 min)": " / ".join(f"{x:.2f}" for x in r.loadavg),
        "Other processes before the run": f"{r.background_cpu:.2f} cores",
        "Peak 1-minute load average during the rebuilds": f"{r.load_during.get('max', 0):.2f}",
        "VACUUM (ANALYZE) rm_search_doc before the searches": f"{r.analyze_seconds:.1f} s",
    }
    return results(
        BENCH,
        " ".join([".venv/bin/python bench/projections.py", *r.args.argv]),
        machine(),
        setup,
        tables,
    )


# ------------------------------------------------------------------------------ main
class LoadWatch:
    """The highest 1-minute load average seen while it runs."""

    def __init__(self) -> None:
        self.max = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max = max(self.max, os.getloadavg()[0])
            self._stop.wait(2.0)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(5)
        return self.max


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--db-url", help="use this database as it is (never dropped)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the database of an earlier --keep run if its corpus has the same "
        "parameters (implies --keep)",
    )
    parser.add_argument("--save-events", type=int, default=3000, help="events per app.save")
    parser.add_argument("--window", type=int, default=2000, help="tickets in progress at once")
    parser.add_argument("--batches", default="500,1000,2000", help="rebuild batch sizes")
    parser.add_argument("--read-passes", type=int, default=2)
    parser.add_argument("--queries", type=int, default=240, help="searches in the mix (about)")
    parser.add_argument("--rounds", type=int, default=2, help="times each search runs")
    parser.add_argument("--fresh", type=int, default=100, help="messages for the freshness test")
    parser.add_argument("--no-http", action="store_true", help="no server: search port only")
    parser.add_argument(
        "--no-profile",
        action="store_true",
        help="skip the extra rebuild of each projector under cProfile and per-statement CPU",
    )
    parser.add_argument("--only-rebuild", action="store_true", help="skip search and freshness")
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.reuse:
        args.keep = True

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    loadavg = os.getloadavg()
    background_cpu = background_cores(2.0)
    log(f"load average {loadavg[0]:.2f} {loadavg[1]:.2f} {loadavg[2]:.2f}; "
        f"background {background_cpu:.2f} cores")  # fmt: skip

    db: Database | None = None
    server: AppServer | None = None
    logdir = Path(tempfile.mkdtemp(prefix="deskstream-bench-proj-"))
    try:
        db = start_database(
            DB_NAME, db_url=args.db_url, pg_dir=PG_DIR, reuse=args.reuse, show=PG_SHOW
        )
        log(f"PostgreSQL {db.version}, {db.kind}: {db.url}" + (" (reused)" if db.reused else ""))
        setup_django(db)
        from command_api.application import get_application

        app = get_application()  # creates the event store's tables on first use
        # "generator": bumped when the generator changes what it makes (2: no clumped times).
        params = {
            "tickets": args.tickets,
            "messages": args.messages,
            "seed": args.seed,
            "generator": 2,
        }
        gen = meta_get("corpus")
        gen_reused = bool(gen and gen.get("params") == params)
        if gen and not gen_reused:
            raise SystemExit(
                f"the database holds a corpus made with {gen.get('params')}, not {params}; "
                "run without --reuse (or with --db-url of an empty database)"
            )
        if not gen_reused:
            if query("SELECT count(*) FROM deskstream_events")[0][0]:
                raise SystemExit("the database already has events; give an empty one")
            log(f"generating {args.tickets:,} tickets with {args.messages:,} messages")
            rng = random.Random(args.seed)
            t0 = time.perf_counter()
            people = create_people(
                max(50, args.tickets // 10), max(5, min(40, args.tickets // 800)), rng
            )
            people_seconds = time.perf_counter() - t0
            stats = generate(app, people, args.tickets, args.messages, args.seed, args)
            gen = {
                "params": params,
                "events": stats.events,
                "seconds": stats.seconds,
                "rate": stats.rate,
                "saves": stats.saves,
                "save_events": args.save_events,
                "window": args.window,
                "domain_seconds": stats.domain_seconds,
                "save_seconds": stats.save_seconds,
                "people_seconds": people_seconds,
                "messages": stats.messages,
                "internal": stats.internal,
                "refused": stats.refused,
                "customers": people.customers,
                "agents": people.agents,
            }
            log(
                f"generated {stats.events:,} events in {stats.seconds:.0f}s = "
                f"{stats.rate:,.0f} events/s (app.save: {stats.save_seconds:.0f}s)"
            )
            secs = vacuum_analyze("deskstream_events")
            log(f"VACUUM (ANALYZE) deskstream_events: {secs:.1f}s")
            meta_put("corpus", gen)
        assert gen is not None
        people = People(gen["customers"], gen["agents"])
        corpus = corpus_info()
        log(f"corpus: {corpus['events']:,} events, {mib(corpus['bytes'])}")

        log("reading the notification log (the ceiling)")
        batches = [int(b) for b in args.batches.split(",") if b]
        limits = sorted({1000, *batches})
        reads = measure_reads(limits, args.read_passes)

        log("rebuilding the projections")
        watch = LoadWatch()
        rebuilds: list[RebuildRow] = []
        for batch in batches:
            for name in PROJECTORS:
                rebuilds.append(run_rebuild(name, batch))
        load_during = {"max": watch.stop()}
        profiles: dict[str, list[tuple[str, float, float]]] = {}
        statement_cpu: dict[str, list[tuple[str, int, float, int]]] = {}
        stages: dict[str, list[tuple[str, float]]] = {}
        if not args.no_profile:
            for name in PROJECTORS:
                prof = cProfile.Profile()
                statements = StatementCpu()
                log(f"profiling a rebuild of {name} at batch 1000")
                run_rebuild(name, 1000, prof, statements)
                profiles[name] = profile_summary(prof)
                stages[name] = profile_stages(prof)
                statement_cpu[name] = statements.top()
                for where, own, cum in profiles[name]:
                    log(f"    {own:7.2f} {cum:7.2f}  {where}")
                for label, n, secs, rows in statement_cpu[name]:
                    log(f"    pg {secs:7.2f}s {n:5d} statements {rows:8,d} rows  {label}")
        analyze = vacuum_analyze("rm_search_doc")
        sizes = table_sizes(["rm_ticket", "rm_message", "rm_search_doc"])

        cases: list[SearchCase] = []
        direct: list[Timed] = []
        http: list[Timed] = []
        fresh: Fresh | None = None
        if not args.only_rebuild:
            cases = build_cases(random.Random(args.seed + 1), people, args.queries)
            agent_user = people.agents[0]
            log(f"search: {len(cases)} searches x {args.rounds}, direct")
            direct = search_direct(cases, agent_user, args.rounds)
            log(f"  p50 {percentile([t.seconds for t in direct], 50) * 1000:.1f} ms, "
                f"p95 {percentile([t.seconds for t in direct], 95) * 1000:.1f} ms")  # fmt: skip
            probe_customer = people.customers[-1]
            if not args.no_http:
                users = sorted(
                    {agent_user, probe_customer}
                    | {str(c.filters["customer"]) for c in cases if "customer" in c.filters}
                )
                tokens = tokens_for(users)
                others = fast_forward_others(PROJECTORS)
                log(f"fast-forwarded to the head: {', '.join(others)}")
                from django.db import connection

                connection.close()
                log("starting the server (projectors in process)")
                server = start_server(db, logdir)
                server.wait_ready()
                time.sleep(2.0)  # let the projectors settle at the head
                log(f"search: {len(cases)} searches x {args.rounds}, HTTP")
                http = search_http(server, cases, tokens, agent_user, args.rounds)
                log(f"  p50 {percentile([t.seconds for t in http], 50) * 1000:.1f} ms, "
                    f"p95 {percentile([t.seconds for t in http], 95) * 1000:.1f} ms")  # fmt: skip
                if args.fresh:
                    log(f"freshness: {args.fresh} messages over HTTP")
                    fresh = freshness_http(
                        server, args.fresh, probe_customer, agent_user, tokens, 10.0
                    )
            elif args.fresh:
                log(f"freshness: {args.fresh} messages in process")
                fresh = freshness_direct(args.fresh, probe_customer, agent_user, 10.0)
            if fresh:
                log(
                    f"  p50 {percentile(fresh.seconds, 50) * 1000:.0f} ms, "
                    f"p95 {percentile(fresh.seconds, 95) * 1000:.0f} ms, missing {fresh.missing}"
                )
        report = Report(
            db=db,
            args=args,
            loadavg=loadavg,
            background_cpu=background_cpu,
            corpus=corpus,
            gen=gen,
            gen_reused=gen_reused,
            reads=reads,
            rebuilds=rebuilds,
            sizes=sizes,
            analyze_seconds=analyze,
            cases=cases,
            direct=direct,
            http=http,
            fresh=fresh,
            profiles=profiles,
            statement_cpu=statement_cpu,
            stages=stages,
            load_during=load_during,
        )
        publish(build_results(report), write=not args.no_doc)
    finally:
        if server is not None:
            server.stop()
            log(f"server log: {server.logfile}")
        if db is not None:
            finish(db, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
