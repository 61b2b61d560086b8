"""Message formatting: the Markdown subset and the sanitiser behind ``body_html``."""

from __future__ import annotations

import pytest

from infra.markdown import render_markdown, sanitise_html

REL = 'target="_blank" rel="noopener noreferrer nofollow"'


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("*a* **b** ~~c~~", "<p><em>a</em> <strong>b</strong> <s>c</s></p>"),
        ("`x < y`", "<p><code>x &lt; y</code></p>"),
        ("1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>"),
        ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
        ("```\n<b>\n```", "<pre><code>&lt;b&gt;\n</code></pre>"),
        ("line\nnext", "<p>line<br>\nnext</p>"),
        ("[docs](https://example.com/d)", f'<p><a href="https://example.com/d" {REL}>docs</a></p>'),
        (
            "see www.example.com",
            f'<p>see <a href="http://www.example.com" {REL}>www.example.com</a></p>',
        ),
        ("# not a heading", "<p># not a heading</p>"),
        (
            "![img](https://example.com/a.png)",
            f'<p>!<a href="https://example.com/a.png" {REL}>img</a></p>',
        ),
    ],
)
def test_the_subset(source: str, html: str) -> None:
    assert render_markdown(source) == html


@pytest.mark.parametrize(
    ("payload", "html"),
    [
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
        ("[x](javascript:alert(1))", "<p>[x](javascript:alert(1))</p>"),
        ("[x](JaVaScRiPt:alert(1))", "<p>[x](JaVaScRiPt:alert(1))</p>"),
        ("<javascript:alert(1)>", "<p>&lt;javascript:alert(1)&gt;</p>"),
        ("[x](data:text/html,hi)", "<p>[x](data:text/html,hi)</p>"),
    ],
)
def test_markdown_never_makes_active_content(payload: str, html: str) -> None:
    assert render_markdown(payload) == html


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p>hi<script>alert(1)</script></p>", "<p>hi</p>"),
        ('<img src="x" onerror="alert(1)">ok', "ok"),
        ('<a href="javascript:alert(1)" onclick="x()">a</a>', f"<a {REL}>a</a>"),
        ('<p style="position:fixed" class="x">p</p>', "<p>p</p>"),
        (
            '<a href="https://e.com" rel="opener" target="_self">e</a>',
            f'<a href="https://e.com" {REL}>e</a>',
        ),
        ("<iframe src=https://e.com></iframe><style>*{}</style>t", "t"),
    ],
)
def test_the_sanitiser_keeps_only_formatting(raw: str, clean: str) -> None:
    assert sanitise_html(raw) == clean
