"""What a file is, from its bytes (magic numbers, via puremagic), never from its name.

The name only breaks ties between types the content itself matches (a ZIP container is
also a .docx); text without a signature is ``text/plain`` when it is valid UTF-8 with no
control characters but tab, line feed, carriage return and form feed.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import puremagic

UNKNOWN = "application/octet-stream"
HEAD = 8192  # puremagic reads signatures at the start (and a few at the end) of a file
_TEXT_CONTROLS = {9, 10, 12, 13}


def detect_content_type(data: bytes, name: str = "") -> str:
    try:
        matches = puremagic.magic_string(data[:HEAD] if len(data) > HEAD else data)
    except (puremagic.PureError, ValueError):
        matches = []
    typed = [m for m in matches if m.mime_type]
    if typed:
        suffix = PurePosixPath(name).suffix.lower()
        best = max(m.confidence for m in typed)
        for match in typed:
            if suffix and match.extension.lower() == suffix and match.confidence == best:
                return str(match.mime_type)
        return str(typed[0].mime_type)
    if _is_text(data):
        return "text/plain"
    return UNKNOWN


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(
        (ord(ch) < 32 and ord(ch) not in _TEXT_CONTROLS) or ord(ch) == 127 for ch in text
    )
