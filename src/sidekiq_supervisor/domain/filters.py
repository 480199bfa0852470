"""The seed's optional filter: a case-insensitive substring of a job's arguments.

Arguments are stored as compact JSON text, so the filter matches what a person sees in them:
``"alice@example.com"`` finds ``[42, "alice@example.com"]``. Wildcards in the filter are literal.

Case is ignored one character at a time (``fold_case``), the rule of PostgreSQL's ILIKE, so that
SQLite and PostgreSQL find the same jobs: ``STRASSE`` does not find ``straße`` on either.
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


# Characters whose str.lower() depends on context or takes two code points, mapped as a
# one-character lowering (PostgreSQL's lower()) maps them: final sigma is a plain sigma, and
# dotted capital I a plain i.
_ONE_TO_ONE = str.maketrans({"\u03a3": "\u03c3", "\u0130": "i"})


def fold_case(text: str) -> str:
    """``text`` lowered one character at a time, as PostgreSQL's ``lower()`` (and ILIKE) does."""
    return text.translate(_ONE_TO_ONE).lower()


def like_pattern(needle: str) -> str:
    """A LIKE pattern matching ``needle`` anywhere, with ``%``, ``_`` and ``\\`` taken literally."""
    escaped = (
        needle.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )
    return f"%{escaped}%"
