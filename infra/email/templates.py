"""E-mail templates: a fixed set of ``${placeholder}`` fields per kind, rendered safely.

Admins edit the templates, and their values (a ticket's subject, a message, a customer's
name) come from users, so no template engine runs here: no Django or Jinja templates, no
attribute lookups, no filters, no loops. A template is text with ``${name}`` fields; the
names allowed for each kind are listed in ``PLACEHOLDERS``; ``$$`` is a literal ``$`` and
any other ``$`` is plain text. Substitution is one pass, so a value that itself contains
``${...}``, ``{{ }}`` or ``{% %}`` stays text.

- The **subject** gets the values as they are, then every line break becomes a space (no
  header injection) and it is cut to 250 characters.
- The **plain-text** body gets the values as they are.
- The **HTML** body gets every value HTML-escaped; the admin's HTML is sanitized with
  ``nh3`` when it is saved, and the rendered result once more (so a value can never make a
  ``javascript:`` link either).
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

import nh3

STATUS_CHANGED = "status_changed"
PUBLIC_REPLY = "public_reply"
ASSIGNED = "assigned"
SLA_REMINDER = "sla_reminder"
SLA_BREACHED = "sla_breached"
KINDS = (STATUS_CHANGED, PUBLIC_REPLY, ASSIGNED, SLA_REMINDER, SLA_BREACHED)

COMMON = (
    "site_name",
    "recipient_name",
    "customer_name",
    "ticket_subject",
    "ticket_id",
    "ticket_url",
)
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    STATUS_CHANGED: (*COMMON, "status", "previous_status"),
    PUBLIC_REPLY: (*COMMON, "author_name", "message_excerpt"),
    ASSIGNED: (*COMMON, "agent_name", "assigned_by"),
    SLA_REMINDER: (*COMMON, "agent_name", "target", "deadline"),
    SLA_BREACHED: (*COMMON, "agent_name", "target", "deadline"),
}
SUBJECT_MAX = 200  # of the template
RENDERED_SUBJECT_MAX = 250
BODY_MAX = 20_000

ALLOWED_STYLE = {
    "color", "background-color", "font-family", "font-size", "font-weight", "font-style",
    "text-align", "text-decoration", "line-height", "margin", "margin-top", "margin-bottom",
    "margin-left", "margin-right", "padding", "padding-top", "padding-bottom", "padding-left",
    "padding-right", "border", "border-left", "border-radius", "width", "max-width",
}  # fmt: skip
_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRIBUTES["*"] = {*_ATTRIBUTES.get("*", set()), "style"}
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
_LINE_ENDS = re.compile(r"\r\n?")
_FOREIGN_SYNTAX = re.compile(r"\{\{|\{%|\{#")


_FIELDS = r"""
\$(?:
  (?P<escaped>\$)                  |
  \{(?P<braced>[a-z][a-z0-9_]*)\}  |
  (?P<named>(?!))                  |
  (?P<invalid>\{)
)
"""
_FIELD = re.compile(_FIELDS, re.VERBOSE)


class _Template(string.Template):
    """``${name}`` fields only (lower-case names), ``$$`` for ``$``, other ``$`` literal."""

    flags = re.RegexFlag(0)
    pattern = _FIELDS  # type: ignore[assignment]  # compiled by string.Template


@dataclass(frozen=True)
class TemplateParts:
    subject: str
    text_body: str
    html_body: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def sanitize_html(fragment: str) -> str:
    """The admin's (or a rendering's) HTML with scripts, handlers and unsafe URLs removed."""
    return nh3.clean(fragment, attributes=_ATTRIBUTES, filter_style_properties=ALLOWED_STYLE)


def single_line(text: str) -> str:
    """One header line: line breaks become spaces (no header injection), ends trimmed."""
    return " ".join(_LINE_BREAKS.sub(" ", text).split())


def validate(kind: str, parts: TemplateParts) -> dict[str, list[str]]:
    """Problems per field (empty when the template can be saved)."""
    allowed = PLACEHOLDERS[kind]
    errors: dict[str, list[str]] = {}
    for name, value, limit in (
        ("subject", parts.subject, SUBJECT_MAX),
        ("text_body", parts.text_body, BODY_MAX),
        ("html_body", parts.html_body, BODY_MAX),
    ):
        problems = []
        if not value.strip():
            problems.append("Must not be empty.")
        if len(value) > limit:
            problems.append(f"At most {limit} characters.")
        if name == "subject" and _LINE_BREAKS.search(value):
            problems.append("The subject is one line.")
        problems += _syntax_problems(value)
        unknown = sorted({i for i in _identifiers(value) if i not in allowed})
        if unknown:
            problems.append(
                "Unknown placeholder(s): "
                + ", ".join(f"${{{u}}}" for u in unknown)
                + ". Allowed: "
                + ", ".join(f"${{{a}}}" for a in allowed)
                + "."
            )
        if problems:
            errors[name] = problems
    return errors


def _identifiers(text: str) -> list[str]:
    return [m.group("braced") for m in _FIELD.finditer(text) if m.group("braced")]


def _syntax_problems(text: str) -> list[str]:
    problems = []
    for match in _FIELD.finditer(text):
        if match.group("invalid") is not None:
            line = text.count("\n", 0, match.start()) + 1
            problems.append(
                f"Line {line}: '${{' must be followed by a placeholder name and '}}' "
                "(write '$$' for a dollar sign)."
            )
            break
    if _FOREIGN_SYNTAX.search(text):
        problems.append(
            "'{{ }}', '{% %}' and '{# #}' are not template syntax here: "
            "write placeholders as ${name}."
        )
    return problems


def clean(kind: str, parts: TemplateParts) -> TemplateParts:
    """What is stored for a valid template: the HTML sanitized, the rest as given."""
    return TemplateParts(parts.subject.strip(), parts.text_body, sanitize_html(parts.html_body))


def render(kind: str, parts: TemplateParts, values: Mapping[str, str]) -> RenderedEmail:
    """Fill a template's placeholders. Never raises: an unknown or broken field stays text."""
    known = {name: str(values.get(name, "")) for name in PLACEHOLDERS[kind]}
    escaped = {
        name: html.escape(_LINE_ENDS.sub("\n", value), quote=True).replace("\n", "<br>\n")
        for name, value in known.items()
    }
    subject = single_line(_Template(parts.subject).safe_substitute(known))
    return RenderedEmail(
        subject=subject[:RENDERED_SUBJECT_MAX],
        text=_Template(parts.text_body).safe_substitute(known),
        html=sanitize_html(_Template(parts.html_body).safe_substitute(escaped)),
    )


DEFAULTS: dict[str, TemplateParts] = {
    STATUS_CHANGED: TemplateParts(
        subject='[${site_name}] Your ticket "${ticket_subject}" is now ${status}',
        text_body=(
            "Hello ${customer_name},\n"
            "\n"
            'the status of your ticket "${ticket_subject}" changed from ${previous_status} '
            "to ${status}.\n"
            "\n"
            "See the ticket: ${ticket_url}\n"
            "\n"
            "-- \n"
            "${site_name}\n"
        ),
        html_body=(
            "<p>Hello ${customer_name},</p>\n"
            "<p>the status of your ticket <strong>${ticket_subject}</strong> changed from "
            "${previous_status} to <strong>${status}</strong>.</p>\n"
            '<p><a href="${ticket_url}" rel="noopener noreferrer">See the ticket</a></p>\n'
            "<p>${site_name}</p>\n"
        ),
    ),
    PUBLIC_REPLY: TemplateParts(
        subject='[${site_name}] New reply on "${ticket_subject}"',
        text_body=(
            "Hello ${customer_name},\n"
            "\n"
            '${author_name} replied to your ticket "${ticket_subject}":\n'
            "\n"
            "${message_excerpt}\n"
            "\n"
            "Read and answer: ${ticket_url}\n"
            "\n"
            "-- \n"
            "${site_name}\n"
        ),
        html_body=(
            "<p>Hello ${customer_name},</p>\n"
            "<p>${author_name} replied to your ticket <strong>${ticket_subject}</strong>:</p>\n"
            "<blockquote>${message_excerpt}</blockquote>\n"
            '<p><a href="${ticket_url}" rel="noopener noreferrer">Read and answer</a></p>\n'
            "<p>${site_name}</p>\n"
        ),
    ),
    ASSIGNED: TemplateParts(
        subject="[${site_name}] Assigned to you: ${ticket_subject}",
        text_body=(
            "Hello ${agent_name},\n"
            "\n"
            '${assigned_by} assigned the ticket "${ticket_subject}" from ${customer_name} '
            "to you.\n"
            "\n"
            "Open it: ${ticket_url}\n"
            "\n"
            "-- \n"
            "${site_name}\n"
        ),
        html_body=(
            "<p>Hello ${agent_name},</p>\n"
            "<p>${assigned_by} assigned the ticket <strong>${ticket_subject}</strong> from "
            "${customer_name} to you.</p>\n"
            '<p><a href="${ticket_url}" rel="noopener noreferrer">Open it</a></p>\n'
            "<p>${site_name}</p>\n"
        ),
    ),
    SLA_REMINDER: TemplateParts(
        subject="[${site_name}] ${target} due soon: ${ticket_subject}",
        text_body=(
            "Hello ${agent_name},\n"
            "\n"
            'the ${target} deadline of the ticket "${ticket_subject}" from ${customer_name} '
            "is ${deadline}.\n"
            "\n"
            "Open it: ${ticket_url}\n"
            "\n"
            "-- \n"
            "${site_name}\n"
        ),
        html_body=(
            "<p>Hello ${agent_name},</p>\n"
            "<p>the ${target} deadline of the ticket <strong>${ticket_subject}</strong> from "
            "${customer_name} is <strong>${deadline}</strong>.</p>\n"
            '<p><a href="${ticket_url}" rel="noopener noreferrer">Open it</a></p>\n'
            "<p>${site_name}</p>\n"
        ),
    ),
    SLA_BREACHED: TemplateParts(
        subject="[${site_name}] SLA breached (${target}): ${ticket_subject}",
        text_body=(
            "Hello ${agent_name},\n"
            "\n"
            'the ${target} deadline of the ticket "${ticket_subject}" from ${customer_name} '
            "passed at ${deadline}.\n"
            "\n"
            "Open it: ${ticket_url}\n"
            "\n"
            "-- \n"
            "${site_name}\n"
        ),
        html_body=(
            "<p>Hello ${agent_name},</p>\n"
            "<p>the ${target} deadline of the ticket <strong>${ticket_subject}</strong> from "
            "${customer_name} passed at <strong>${deadline}</strong>.</p>\n"
            '<p><a href="${ticket_url}" rel="noopener noreferrer">Open it</a></p>\n'
            "<p>${site_name}</p>\n"
        ),
    ),
}


def with_rating_links(email: RenderedEmail, links: list[tuple[int, str]]) -> RenderedEmail:
    """The resolution e-mail with the satisfaction links appended (one per rating, each a
    signed one-click link: ``infra.email.satisfaction``). Outside the editable template, so
    an admin's template cannot lose them."""
    text = "\n".join(f"  {rating} - {url}" for rating, url in links)
    items = " ".join(
        f'<a href="{html.escape(url, quote=True)}" rel="noopener noreferrer" '
        f'style="padding:4px 8px;border:1px solid #888;border-radius:4px">{rating}</a>'
        for rating, url in links
    )
    return RenderedEmail(
        subject=email.subject,
        text=f"{email.text}\nHow did we do? Rate us from 1 (poor) to 5 (great):\n{text}\n",
        html=email.html
        + sanitize_html(f"<p>How did we do? Rate us from 1 (poor) to 5 (great):</p><p>{items}</p>"),
    )
