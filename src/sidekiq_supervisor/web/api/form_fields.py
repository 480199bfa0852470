"""The fields of a form-encoded body, as ``parse_qsl`` reads them, in less of the event loop's time.

Every seed report is such a body, and its ``arguments`` field is mostly escapes (``%5B1234%2C...``):
the standard library decodes them one at a time in Python. An ASCII body is split here as
``parse_qsl`` splits it, and an escaped part whose every ``%`` starts an escape (and which has no
``=`` nor line break, which quoted-printable reads otherwise) is decoded in C by
``binascii.a2b_qp``, ``%`` read as quoted-printable's ``=``. Anything else (a body that is not
ASCII, a stray ``%``) takes the standard library's way, so the fields are the same for every body.
"""

from __future__ import annotations

import binascii
import re
from urllib.parse import parse_qsl, unquote_to_bytes

# A part that a2b_qp decodes exactly as percent-decoding does, once each % is turned into =.
QP_SAFE = re.compile(rb"(?:[^%=\r\n]|%[0-9A-Fa-f]{2})*")


def form_fields(body: bytes) -> dict[str, str]:
    """``dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))``: for a
    repeated field the last counts; ``UnicodeDecodeError`` when the body or an escape is not UTF-8."""
    if not body.isascii():
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    fields: dict[str, str] = {}
    for pair in body.split(b"&"):
        if pair:  # parse_qsl skips empty fields ("a=1&&b=2")
            name, _, value = pair.partition(b"=")  # a name alone is a blank value
            fields[_unquoted(name)] = _unquoted(value)
    return fields


def _unquoted(part: bytes) -> str:
    """A name or value of an ASCII body, with ``+`` as space and its escapes decoded (as UTF-8)."""
    if b"+" in part:
        part = part.replace(b"+", b" ")
    if b"%" not in part:
        return part.decode("ascii")
    if QP_SAFE.fullmatch(part):
        return binascii.a2b_qp(part.replace(b"%", b"=")).decode("utf-8")
    return unquote_to_bytes(part).decode("utf-8")
