"""E-mail templates: fixed placeholders, validation, and rendering that nothing can inject into."""

from __future__ import annotations

import pytest

from infra.email import templates as t
from infra.email.ports import OutgoingEmail
from infra.email.templates import TemplateParts

VALUES = {
    "site_name": "Deskstream",
    "recipient_name": "Maria Garcia",
    "customer_name": "Maria Garcia",
    "ticket_subject": "Printer on fire",
    "ticket_id": "26a7004b",
    "ticket_url": "http://127.0.0.1:8000/tickets/26a7004b",
    "author_name": "Ada Lovelace",
    "message_excerpt": "Which printer?",
}


def render(subject: str, text: str, html: str, **values: str) -> t.RenderedEmail:
    return t.render(t.PUBLIC_REPLY, TemplateParts(subject, text, html), {**VALUES, **values})


def test_the_default_templates_render_exactly() -> None:
    out = t.render(t.PUBLIC_REPLY, t.DEFAULTS[t.PUBLIC_REPLY], VALUES)
    assert out.subject == '[Deskstream] New reply on "Printer on fire"'
    assert out.text == (
        'Hello Maria Garcia,\n\nAda Lovelace replied to your ticket "Printer on fire":\n\n'
        "Which printer?\n\nRead and answer: http://127.0.0.1:8000/tickets/26a7004b\n\n"
        "-- \nDeskstream\n"
    )
    assert out.html == (
        "<p>Hello Maria Garcia,</p>\n"
        "<p>Ada Lovelace replied to your ticket <strong>Printer on fire</strong>:</p>\n"
        "<blockquote>Which printer?</blockquote>\n"
        '<p><a href="http://127.0.0.1:8000/tickets/26a7004b" rel="noopener noreferrer">'
        "Read and answer</a></p>\n<p>Deskstream</p>\n"
    )


@pytest.mark.parametrize("kind", t.KINDS)
def test_every_default_is_valid_and_already_sanitized(kind: str) -> None:
    parts = t.DEFAULTS[kind]
    assert t.validate(kind, parts) == {}
    assert t.clean(kind, parts) == parts


def test_placeholders_in_values_are_not_expanded() -> None:
    out = render(
        "${ticket_subject}",
        "${ticket_subject}",
        "<p>${ticket_subject}</p>",
        ticket_subject="${site_name} $$ ${recipient_name} {{ secret }} {% debug %}",
    )
    literal = "${site_name} $$ ${recipient_name} {{ secret }} {% debug %}"
    assert out.subject == literal
    assert out.text == literal
    assert out.html == f"<p>{literal}</p>"


def test_template_code_in_a_template_is_text_never_code() -> None:
    # Saved templates never contain it (validation refuses it), and if one did, it renders as
    # the characters it is: nothing evaluates it.
    out = render(
        "{{ settings.SECRET_KEY }}",
        "{% load x %}{{ ticket_subject|upper }}",
        "<p>{{ 7*7 }} ${ticket_subject.__class__}</p>",
    )
    assert out.subject == "{{ settings.SECRET_KEY }}"
    assert out.text == "{% load x %}{{ ticket_subject|upper }}"
    assert out.html == "<p>{{ 7*7 }} ${ticket_subject.__class__}</p>"


def test_line_breaks_never_reach_the_subject() -> None:
    out = render(
        "Re: ${ticket_subject}",
        "x",
        "<p>x</p>",
        ticket_subject="Hi\r\nBcc: victim@example.com\n\nbody\u2028more",
    )
    assert out.subject == "Re: Hi Bcc: victim@example.com body more"
    mime = OutgoingEmail(
        "maria@acme.test",
        "Maria\r\nBcc: x@y.z",
        "s@d.test",
        "Desk",
        out.subject,
        "t",
        "<p>h</p>",
        "<1@d.test>",
    ).as_mime()
    assert mime["Bcc"] is None
    assert mime["Subject"] == "Re: Hi Bcc: victim@example.com body more"
    assert [v for k, v in mime.items() if k == "To"] == ['"Maria Bcc: x@y.z" <maria@acme.test>']


def test_html_in_values_is_escaped_in_the_html_part_and_kept_in_the_text_part() -> None:
    body = '<script>alert("x")</script>\n<b onmouseover=steal()>bold</b> & co'
    out = render(
        "s",
        "${message_excerpt}",
        "<blockquote>${message_excerpt}</blockquote>",
        message_excerpt=body,
    )
    assert out.text == body
    assert out.html == (
        '<blockquote>&lt;script&gt;alert("x")&lt;/script&gt;<br>\n'
        "&lt;b onmouseover=steal()&gt;bold&lt;/b&gt; &amp; co</blockquote>"
    )


def test_a_value_cannot_make_a_script_link_or_break_out_of_an_attribute() -> None:
    out = render(
        "s",
        "t",
        '<a href="${ticket_subject}">a</a><img alt="${customer_name}">',
        ticket_subject="javascript:alert(1)",
        customer_name='x" onerror="alert(1)',
    )
    assert out.html == (
        '<a rel="noopener noreferrer">a</a><img alt="x&quot; onerror=&quot;alert(1)">'
    )


def test_admin_html_is_sanitized_when_saved() -> None:
    parts = TemplateParts(
        "s",
        "t",
        '<p style="color: red; position: fixed" onclick="x()">Hi ${customer_name}</p>'
        '<script>steal()</script><iframe src="//evil"></iframe><a href="javascript:x">l</a>',
    )
    assert t.validate(t.PUBLIC_REPLY, parts) == {}
    assert t.clean(t.PUBLIC_REPLY, parts).html_body == (
        '<p style="color:red">Hi ${customer_name}</p><a rel="noopener noreferrer">l</a>'
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subject", "Hi ${status}", "Unknown placeholder(s): ${status}."),
        (
            "text_body",
            "${ticket_subject} ${nope} ${also_no}",
            "Unknown placeholder(s): ${also_no}, ${nope}.",
        ),
        (
            "html_body",
            "<p>${ Customer }</p>",
            "Line 1: '${' must be followed by a placeholder name",
        ),
        ("text_body", "a\nb ${", "Line 2: '${' must be followed"),
        (
            "text_body",
            "Hello {{ customer_name }}",
            "'{{ }}', '{% %}' and '{# #}' are not template syntax",
        ),
        (
            "html_body",
            "{% if x %}y{% endif %}",
            "'{{ }}', '{% %}' and '{# #}' are not template syntax",
        ),
        ("subject", "two\nlines", "The subject is one line."),
        ("subject", "   ", "Must not be empty."),
        ("html_body", "x" * 20_001, "At most 20000 characters."),
    ],
)
def test_validation_names_the_field_and_the_problem(field: str, value: str, message: str) -> None:
    parts = {"subject": "s", "text_body": "t", "html_body": "<p>h</p>", field: value}
    errors = t.validate(t.PUBLIC_REPLY, TemplateParts(**parts))
    assert list(errors) == [field]
    assert any(e.startswith(message) for e in errors[field]), errors


def test_dollars_that_are_not_placeholders_stay_text() -> None:
    parts = TemplateParts("Costs $5 or $$10", "US$ 5, $x, $$", "<p>$5</p>")
    assert t.validate(t.PUBLIC_REPLY, parts) == {}
    out = t.render(t.PUBLIC_REPLY, parts, VALUES)
    assert (out.subject, out.text, out.html) == ("Costs $5 or $10", "US$ 5, $x, $", "<p>$5</p>")


def test_each_kind_allows_its_own_placeholders() -> None:
    status = TemplateParts("${status} from ${previous_status}", "${message_excerpt}", "<p>x</p>")
    assert t.validate(t.STATUS_CHANGED, status) == {
        "text_body": [
            "Unknown placeholder(s): ${message_excerpt}. Allowed: ${site_name}, "
            "${recipient_name}, ${customer_name}, ${ticket_subject}, ${ticket_id}, "
            "${ticket_url}, ${status}, ${previous_status}."
        ]
    }
    assert t.validate(t.ASSIGNED, TemplateParts("${agent_name} ${assigned_by}", "t", "h")) == {}
