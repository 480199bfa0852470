"""Masking secrets in job arguments before they are stored.

Job arguments often carry credentials (``{"password": ...}``, API tokens). A key of a JSON object,
at any depth of the arguments, whose name contains one of the configured words (in any case)
has its whole value replaced by :data:`MASK`. Positional arguments have no name to go by and
are kept: redaction can only see what a hash says about itself.
"""

from __future__ import annotations

from typing import Any

MASK = "[REDACTED]"


def redact(arguments: Any, words: tuple[str, ...]) -> tuple[Any, bool]:
    """``arguments`` with the values of matching keys masked, and whether anything was masked.

    ``words`` must be lower case. The input is not modified.
    """
    if not words:
        return arguments, False
    masked = False

    def walk(value: Any) -> Any:
        nonlocal masked
        if isinstance(value, list):
            return [walk(item) for item in value]
        if not isinstance(value, dict):
            return value
        result = {}
        for key, item in value.items():
            if any(word in key.lower() for word in words):
                result[key] = MASK
                masked = True
            else:
                result[key] = walk(item)
        return result

    redacted = walk(arguments)
    return (redacted, True) if masked else (arguments, False)


def may_need_redaction(arguments_text: str, words: tuple[str, ...]) -> bool:
    """False when no word appears anywhere in the text: nothing to mask, no need to parse it."""
    lowered = arguments_text.lower()
    return any(word in lowered for word in words)
