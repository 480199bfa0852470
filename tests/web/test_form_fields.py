"""``form_fields`` reads every form body as ``parse_qsl`` does: the routes' and the fast path's
fields, and their refusals, stay what they were."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import pytest

from sidekiq_supervisor.web.api.form_fields import form_fields

# Pieces that exercise every rule: escapes (valid, upper and lower case, truncated, not hex),
# separators, plus signs, quoted-printable's own specials (=, _, line breaks, trailing space), and
# bytes that are not ASCII or not UTF-8 once decoded.
PIECES = [
    *(bytes([code]) for code in range(128)),
    *(b"%", b"%2", b"%4a", b"%4A", b"%ZZ", b"%%", b"%20", b"%0A", b"%0D", b"%3D", b"%25", b"%2B"),
    *(b"%C3%A9", b"%C3", b"%A9", b"%FF", b"\xc3\xa9", b"\xff", b"==", b"&&", b"+", b"_", b" \r\n"),
]


def standard(body: bytes) -> dict[str, str] | type[UnicodeDecodeError]:
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except UnicodeDecodeError:
        return UnicodeDecodeError


def ours(body: bytes) -> dict[str, str] | type[UnicodeDecodeError]:
    try:
        return form_fields(body)
    except UnicodeDecodeError:
        return UnicodeDecodeError


def test_random_bodies_read_as_parse_qsl_reads_them():
    rng = random.Random(20261204)
    for _ in range(50_000):
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randint(0, 16)))
        assert ours(body) == standard(body), body


@pytest.mark.parametrize(
    "fields",
    [
        {"arguments": '[1234,"customer-42@example.com",{"plan":"pro"}]', "job_class": "HardWorker"},
        {"arguments": '["naïve café", "日本", "a+b=c&d", "100%"]', "queue": "default"},
        {"": "", "name alone": "", "line\r\nbreak": "tab\tand trailing space "},
    ],
)
def test_what_a_client_encodes_comes_back(fields):
    body = urlencode(fields).encode()
    assert form_fields(body) == fields == standard(body)


def test_a_name_without_a_value_and_repeated_fields_read_as_before():
    assert form_fields(b"a&b=&a=2&&c") == {"a": "2", "b": "", "c": ""} == standard(b"a&b=&a=2&&c")


def test_an_escape_that_is_not_utf8_is_refused_as_before():
    for body in (b"queue=%FF", b"queue=%C3", b"q%C3=x"):
        with pytest.raises(UnicodeDecodeError):
            form_fields(body)
