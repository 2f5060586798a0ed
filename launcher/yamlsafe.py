"""Values from users rendered into YAML safely: every string becomes a double-quoted scalar in which
everything but printable ASCII is escaped, so no input can close the quote, start a new key, an anchor, a
tag or a document, and the parsed value is exactly the input."""

from __future__ import annotations

from typing import Any

SHORT_ESCAPES = {"\\": "\\\\", '"': '\\"'}


def quote(text: str) -> str:
    """A YAML double-quoted scalar for `text`."""
    parts = []
    for character in text:
        code = ord(character)
        if character in SHORT_ESCAPES:
            parts.append(SHORT_ESCAPES[character])
        elif 0x20 <= code < 0x7F:
            parts.append(character)
        elif code <= 0xFF:
            parts.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            parts.append(f"\\u{code:04x}")
        else:
            parts.append(f"\\U{code:08x}")
    return '"' + "".join(parts) + '"'


def flow(value: Any) -> str:
    """Flow-style YAML for strings, numbers, booleans, None, and lists and mappings of them."""
    if isinstance(value, str):
        return quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{quote(str(key))}: {flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__} into YAML")
