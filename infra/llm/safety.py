"""What protects a draft's way out and its way back.

Out: personal data is replaced by placeholders before a prompt leaves (e-mail addresses,
phone numbers, card numbers, IBANs and account numbers); ``Redactor`` remembers what each
placeholder stood for, so the draft the agent sees says the real thing again.

Back: ``check_output`` refuses a draft that repeats an internal note (unless the agent allowed
it), carries a secret, names contact details the ticket does not contain, or repeats the
system prompt. Each refusal says why, for the agent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# A card number: 13-19 digits, maybe in groups split by spaces or dashes; checked by Luhn.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# Account numbers: 8-18 digits after a word that says so ("account", "acct", "a/c", "IBAN").
ACCOUNT = re.compile(
    r"(?i)\b(?:account|acct|a/c)(?:\s*(?:no\.?|number|#))?\s*[:#]?\s*(\d[\d -]{6,20}\d)"
)
# Phone numbers: an optional +country code, then 7-15 digits with spaces, dots, dashes or
# parentheses between groups.
PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\d[\d ().-]{5,18}\d(?![\w])")
URL = re.compile(r"\bhttps?://[^\s<>\"')]+", re.IGNORECASE)

SECRETS = [
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWTs
    re.compile(r"(?i)\b(?:password|passwd|api[_ -]?key|secret|token)\s*[:=]\s*\S{6,}"),
]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def luhn(number: str) -> bool:
    digits = [int(d) for d in _digits(number)]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass
class Redactor:
    """Replaces personal data by numbered placeholders (``[EMAIL_1]``), the same value by
    the same placeholder, and puts the values back into text that uses the placeholders."""

    values: dict[str, str] = field(default_factory=dict)  # placeholder -> value
    _seen: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, value) -> ph
    counts: dict[str, int] = field(default_factory=dict)

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, _digits(value) if kind != "EMAIL" else value.lower())
        found = self._seen.get(key)
        if found is None:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            found = f"[{kind}_{self.counts[kind]}]"
            self._seen[key] = found
            self.values[found] = value
        return found

    def redact(self, text: str) -> str:
        text = EMAIL.sub(lambda m: self._placeholder("EMAIL", m.group()), text)
        text = IBAN.sub(lambda m: self._placeholder("ACCOUNT", m.group()), text)
        text = ACCOUNT.sub(
            lambda m: m.group().replace(m.group(1), self._placeholder("ACCOUNT", m.group(1))),
            text,
        )
        text = CARD.sub(
            lambda m: self._placeholder("CARD", m.group()) if luhn(m.group()) else m.group(),
            text,
        )
        return PHONE.sub(self._phone, text)

    def _phone(self, match: re.Match[str]) -> str:
        value = match.group()
        if not 7 <= len(_digits(value)) <= 15 or _looks_like_date(value):
            return value
        return self._placeholder("PHONE", value)

    def restore(self, text: str) -> str:
        for placeholder, value in self.values.items():
            text = text.replace(placeholder, value)
        return text


def _looks_like_date(value: str) -> bool:
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}", value.strip()))


def redact(text: str) -> str:
    return Redactor().redact(text)


# ------------------------------------------------------------------------------ output checks
SHINGLE = 6  # words: a run this long copied from an internal note is its content


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


def _shingles(text: str, n: int = SHINGLE) -> set[tuple[str, ...]]:
    words = _words(text)
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _contacts(text: str) -> set[str]:
    found = {m.group().lower().rstrip(".") for m in EMAIL.finditer(text)}
    found |= {m.group().rstrip(".,;") for m in URL.finditer(text)}
    for match in PHONE.finditer(text):
        digits = _digits(match.group())
        if 7 <= len(digits) <= 15 and not _looks_like_date(match.group()):
            found.add(digits)
    return found


def check_output(
    text: str,
    *,
    ticket_text: str,
    public_text: str,
    internal_notes: list[str],
    allow_internal: bool,
    system_prompt: str,
    allowed_contacts: tuple[str, ...] = (),
) -> list[str]:
    """Why this draft may not be shown (empty: it may). ``ticket_text`` is everything the
    ticket says; ``public_text`` what its customer has seen."""
    problems: list[str] = []
    if any(pattern.search(text) for pattern in SECRETS):
        problems.append("It contains what looks like a secret (a key, token or password).")
    known = _contacts(ticket_text) | {c.lower() for c in allowed_contacts}
    known_digits = _digits(ticket_text)
    strangers = sorted(
        c
        for c in _contacts(text)
        if c not in known
        and not (c.isdigit() and c in known_digits)
        and not any(c.startswith(k) for k in known if k.startswith("http"))
    )
    if strangers:
        problems.append(
            "It names contact details that are not in the ticket: " + ", ".join(strangers[:5])
        )
    if not allow_internal and internal_notes:
        mine = _shingles(text)
        public = _shingles(public_text)
        if any((_shingles(note) - public) & mine for note in internal_notes):
            problems.append(
                "It repeats an internal note; allow internal content to use it in a reply."
            )
    if system_prompt and _shingles(system_prompt, 8) & _shingles(text, 8):
        problems.append("It repeats the draft service's instructions.")
    return problems
