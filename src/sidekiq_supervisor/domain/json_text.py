"""Reading and writing JSON text fast (orjson) without losing integers beyond 64 bits.

orjson reads an integer that does not fit in 64 bits as a float, silently; Ruby apps pass
bignums in job arguments, and those must survive exactly. Such a literal has 19 digits or more,
so a text holding none is read by orjson, and the rare other one by the standard library.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A number literal of 19 digits or more: 2**63 has 19. Digits inside a word (a hex jid, say) are
# not a number; one that is part of a string just takes the slower path, harmlessly.
_LONG_INTEGER = re.compile(r"(?<![0-9A-Za-z_.])-?[0-9]{19,}(?![0-9A-Za-z_.])")
_LONG_INTEGER_BYTES = re.compile(_LONG_INTEGER.pattern.encode())


class InvalidJSON(ValueError):
    """The text is not valid JSON (or nests deeper than a parser can follow)."""


TOO_DEEP = "nests too deep to read"


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``; integers exact whatever their size. NaN and Infinity are refused."""
    found = _LONG_INTEGER_BYTES.search(text) if isinstance(text, bytes) else _LONG_INTEGER.search(text)
    if found is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(TOO_DEEP if "depth" in str(exc) else "is not valid JSON text") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidJSON(TOO_DEEP) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidJSON("is not valid JSON text") from None


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value``, integers beyond 64 bits included.

    orjson refuses integers beyond 64 bits and nesting beyond 254 levels; the standard library
    writes both (ingest refuses arguments deeper than ``domain.payload.MAX_ARGUMENTS_DEPTH``).
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _refuse_constant(name: str) -> Any:
    raise InvalidJSON(f"is not valid JSON text ({name})")


def preview(value: Any, limit: int | None = None) -> str:
    """Compact JSON of ``value`` for people, cut to ``limit`` characters; never raises.

    Arguments stored before ingest limited their nesting may be too deep to write again.
    """
    try:
        text = dumps(value).decode()
    except (TypeError, ValueError, RecursionError):
        text = "(too deeply nested to show)"
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"
