"""``PostMessageSerializer.validated`` checks the common body directly (``plain_message``):
the result, or the 400 and its wording, must be exactly what the serializer gives."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from command_api.serializers import PostMessageSerializer, plain_message
from domain.ticket import BODY_MAX


def by_the_serializer(data: Any) -> tuple[str, Any]:
    serializer = PostMessageSerializer(data=data)
    try:
        serializer.is_valid(raise_exception=True)
        return "ok", serializer.validated_data
    except ValidationError as err:
        return "error", err.detail


def by_the_view(data: Any) -> tuple[str, Any]:
    try:
        return "ok", PostMessageSerializer.validated(data)
    except ValidationError as err:
        return "error", err.detail


texts = st.one_of(
    st.text(),
    st.text(alphabet=" \t\n\r\x00\x0b\x0c\u00a0\u2028\u3000ab\ud800\udfff", max_size=8),
    st.builds(
        lambda n, pad: pad + "x" * n + pad,
        st.integers(BODY_MAX - 2, BODY_MAX + 2),
        st.sampled_from(["", " ", "\n\t"]),
    ),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    texts,
    st.just([]),
    st.just({}),
    st.lists(
        st.dictionaries(st.sampled_from(["name", "size"]), st.one_of(st.text(), st.integers()))
    ),
)
bodies = st.one_of(
    st.fixed_dictionaries(
        {"body": texts},
        optional={"internal": st.one_of(st.booleans(), values), "attachments": values},
    ),
    st.dictionaries(st.sampled_from(["body", "internal", "attachments", "extra", "Body"]), values),
    values,
)


@settings(max_examples=1500, deadline=None)
@given(bodies)
@example({"body": "  Hello  "})
@example({"body": "Hello", "internal": True, "attachments": []})
@example({"body": "x" * BODY_MAX})
@example({"body": " " + "x" * BODY_MAX + " "})
@example({"body": "x" * (BODY_MAX + 1)})
@example({"body": "a\x00b"})
@example({"body": "a\ud800b"})
@example({"body": " \n "})
@example({"body": "Hi", "internal": 1})
@example({"body": "Hi", "attachments": None})
@example({"body": "Hi", "attachments": [{"name": "a.txt"}]})
@example({"body": "Hi", "extra": 1})
@example([{"body": "Hi"}])
def test_the_direct_check_gives_what_the_serializer_gives(data: Any) -> None:
    assert by_the_view(data) == by_the_serializer(data)


def test_common_bodies_take_the_direct_path() -> None:
    assert plain_message({"body": " Hi "}) == {"body": "Hi", "internal": False, "attachments": []}
    assert plain_message({"body": "Hi", "internal": True, "attachments": []}) is not None
    assert plain_message({"body": "Hi", "attachments": [{"name": "a.txt"}]}) is None
