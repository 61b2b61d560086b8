"""Message formatting: a small Markdown subset rendered to HTML and sanitised on the server.

The source text is stored as written; readers get ``body_html`` from here. Markdown-it renders
emphasis, lists, code, links and quotes (raw HTML, images and headings are off), bare URLs
become links, and nh3 (Ammonia) keeps only the tags below, so whatever the renderer lets
through, no script, event handler or ``javascript:`` URL reaches a browser. Links open in a
new tab with ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

TAGS = frozenset(
    {"p", "br", "em", "strong", "s", "ul", "ol", "li", "code", "pre", "blockquote", "a"}
)
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "breaks": True})
    md.enable(["linkify", "strikethrough"])
    md.disable(["heading", "lheading", "hr", "image", "html_block", "html_inline"])
    md.validateLink = lambda url: url.split(":", 1)[0].lower() in URL_SCHEMES  # type: ignore[method-assign]
    return md


# Rendering costs a few hundred microseconds a message (markdown-it is pure Python), and a
# thread is read again whenever a message arrives: each process keeps the recent results.
RENDERED_CACHE = 4096


@lru_cache(maxsize=RENDERED_CACHE)
def render_markdown(text: str) -> str:
    """The sanitised HTML of a message body (Markdown subset); safe to insert as HTML."""
    return sanitise_html(_renderer().render(text))


def sanitise_html(html: str) -> str:
    """Only the formatting tags survive; links get a safe scheme, a new tab and ``rel``."""
    return nh3.clean(
        html,
        tags=set(TAGS),
        clean_content_tags={"script", "style"},
        attributes={"a": {"href"}, "ol": {"start"}},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    ).strip()
