"""The seed's optional filter: a case-insensitive substring of a job's arguments.

Arguments are stored as compact JSON text, so the filter matches what a person sees in them:
``"alice@example.com"`` finds ``[42, "alice@example.com"]``. Wildcards in the filter are literal.
"""

from __future__ import annotations

MAX_FILTER_LENGTH = 200
LIKE_ESCAPE = "\\"


class InvalidFilter(ValueError):
    """The filter string cannot be used (it is too long)."""


def normalize_filter(text: str | None) -> str | None:
    """The filter to apply, or ``None`` for no filter (an empty string filters nothing)."""
    if text is None or text == "":
        return None
    if len(text) > MAX_FILTER_LENGTH:
        raise InvalidFilter(f"the filter is longer than {MAX_FILTER_LENGTH} characters")
    return text


def like_pattern(needle: str) -> str:
    """A LIKE pattern matching ``needle`` anywhere, with ``%``, ``_`` and ``\\`` taken literally."""
    escaped = (
        needle.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"
