"""The search index's settings and mappings, in code (one place; a rebuild creates a new
versioned index from them, ``infra.opensearch.store``).

Text is analysed per language where the ticket's language is known: a ticket's subject and
description, and its messages' bodies, go to ``title_<lang>`` / ``body_<lang>`` for the
ticket's language (``LANGUAGES``; anything else to ``title_other`` / ``body_other``, folded
but not stemmed). Every text analyzer folds case and accents (``lowercase`` +
``asciifolding``); the language ones also drop that language's stop words and stem. Queries
search ``title_*`` and ``body_*``, so each field's own analyzer reads the query the way it
read the document.

A customer's name (a customer document's title, ``name``), their e-mail, company and phone
(``contact``) and the ticket id also get edge n-gram ``prefix`` sub-fields: typing ``ali``
finds Alice, ``alice@glo`` her e-mail, ``3f2a`` a ticket whose id starts so. On a ticket's
documents the customer's metadata is searchable by whole words only (``customer_text``):
prefixes there would cost an n-gram index of every ticket for what the customer's own
document already finds.

Filters read ``keyword`` fields (exact terms, doc values); ``message_ids`` (a ticket's own
messages, so a change of the ticket's fields can rewrite them by id) is stored, not indexed.
"""

from __future__ import annotations

from typing import Any

# language code (the ticket's ``language``) -> (stop word list, stemmer) of that language.
# Only stemmers checked against the test server are listed: osmem-server 0.1.6 matches every
# document to any word with the German, Italian, Dutch, Portuguese and "light_*" stemmers, so
# those languages are folded but not stemmed (``OTHER``) until they are checked on OpenSearch.
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("_english_", "english"),
    "fr": ("_french_", "french"),
    "es": ("_spanish_", "spanish"),
}
OTHER = "other"  # a language without its own analyzer: folded, not stemmed
# The English stop words (Lucene's ``_english_``): a query word among them never matches a
# prefix either (``the`` must not find "Theodore").
ENGLISH_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
PREFIX_MIN, PREFIX_MAX = 2, 20  # edge n-gram lengths of the prefix sub-fields
REFRESH_INTERVAL = "1s"  # how soon a write is searchable (docs/operations.md)


def language_of(code: str | None) -> str:
    code = (code or "").split("-")[0].lower()
    return code if code in LANGUAGES else OTHER


def text_fields(kind: str) -> list[str]:
    """``title_<lang>`` ... for every analysed language."""
    return [f"{kind}_{lang}" for lang in [*LANGUAGES, OTHER]]


def _analysis() -> dict[str, Any]:
    filters: dict[str, Any] = {
        "prefix_edge": {"type": "edge_ngram", "min_gram": PREFIX_MIN, "max_gram": PREFIX_MAX}
    }
    analyzers: dict[str, Any] = {
        "folded": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding"],
        },
        "prefix_index": {
            "type": "custom",
            "tokenizer": "standard",
            "filter": ["lowercase", "asciifolding", "prefix_edge"],
        },
    }
    for lang, (stop, stemmer) in LANGUAGES.items():
        filters[f"{lang}_stop"] = {"type": "stop", "stopwords": stop}
        filters[f"{lang}_stemmer"] = {"type": "stemmer", "language": stemmer}
        analyzers[f"text_{lang}"] = {
            "type": "custom",
            "tokenizer": "standard",
            # folded before stemming, so "Café" and "cafe" stem alike
            "filter": ["lowercase", "asciifolding", f"{lang}_stop", f"{lang}_stemmer"],
        }
    analyzers[f"text_{OTHER}"] = analyzers["folded"]
    return {"filter": filters, "analyzer": analyzers}


def _text(analyzer: str) -> dict[str, Any]:
    return {"type": "text", "analyzer": analyzer}


PREFIXED = {"prefix": {"type": "text", "analyzer": "prefix_index", "search_analyzer": "folded"}}


def index_body(*, refresh_interval: str = REFRESH_INTERVAL) -> dict[str, Any]:
    """The settings and mappings of a search index (one shard per index here; raise
    ``number_of_shards`` with the corpus, the queries do not depend on it)."""
    properties: dict[str, Any] = {
        "key": {"type": "keyword"},
        "kind": {"type": "keyword"},
        "ticket_id": {"type": "keyword", "fields": PREFIXED},
        "customer_id": {"type": "keyword"},
        "internal": {"type": "boolean"},
        "language": {"type": "keyword"},
        "title": {"type": "keyword", "index": False, "doc_values": False},
        "body": {"type": "keyword", "index": False, "doc_values": False},
        "metadata": {"type": "keyword", "index": False, "doc_values": False},
        # The customer's metadata, searchable: on their tickets plain (folded), on their own
        # document with prefixes too (type-ahead finds the customer, not every ticket).
        "customer_text": {"type": "text", "analyzer": "folded"},
        "contact": {"type": "text", "analyzer": "folded", "fields": PREFIXED},
        "name": {"type": "text", "analyzer": "folded", "fields": PREFIXED},
        "status": {"type": "keyword"},
        "priority": {"type": "keyword"},
        "assigned_agent_id": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "created_at": {"type": "date"},
        "updated_at": {"type": "date"},
        "occurred_at": {"type": "date"},
        "message_ids": {"type": "keyword", "index": False, "doc_values": False},
    }
    for lang in [*LANGUAGES, OTHER]:
        properties[f"title_{lang}"] = _text(f"text_{lang}")
        properties[f"body_{lang}"] = _text(f"text_{lang}")
    return {
        "settings": {
            "number_of_shards": 1,
            "refresh_interval": refresh_interval,
            "analysis": _analysis(),
        },
        "mappings": {"dynamic": "strict", "properties": properties},
    }


POSITIONS_BODY: dict[str, Any] = {
    "settings": {"number_of_shards": 1},
    "mappings": {"dynamic": "strict", "properties": {"position": {"type": "long"}}},
}
