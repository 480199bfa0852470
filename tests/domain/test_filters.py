"""The arguments filter: normalisation and a LIKE pattern whose wildcards are literal."""

from __future__ import annotations

import sqlite3

import pytest

from sidekiq_supervisor.domain.filters import MAX_FILTER_LENGTH, InvalidFilter, like_pattern, normalize_filter


@pytest.mark.parametrize("text", [None, ""], ids=["none", "empty"])
def test_no_filter_or_an_empty_filter_filters_nothing(text):
    assert normalize_filter(text) is None


def test_a_filter_keeps_its_case_and_spaces():
    assert normalize_filter("  Alice Smith ") == "  Alice Smith "


def test_a_filter_of_the_maximum_length_is_accepted():
    text = "x" * MAX_FILTER_LENGTH
    assert normalize_filter(text) == text


def test_a_filter_longer_than_the_maximum_raises_invalid_filter():
    with pytest.raises(InvalidFilter):
        normalize_filter("x" * (MAX_FILTER_LENGTH + 1))


def test_invalid_filter_is_a_value_error():
    assert issubclass(InvalidFilter, ValueError)


@pytest.mark.parametrize(
    ("needle", "pattern"),
    [
        pytest.param("alice", "%alice%", id="plain"),
        pytest.param("50%", "%50\\%%", id="percent"),
        pytest.param("a_b", "%a\\_b%", id="underscore"),
        pytest.param("C:\\tmp", "%C:\\\\tmp%", id="backslash"),
        pytest.param("\\%_", "%\\\\\\%\\_%", id="all-three"),
    ],
)
def test_like_pattern_escapes_wildcards_and_the_escape_character(needle, pattern):
    assert like_pattern(needle) == pattern


@pytest.mark.parametrize(
    ("needle", "haystack", "matches"),
    [
        pytest.param("50%", '["50% off"]', True, id="percent-matches-itself"),
        pytest.param("50%", "[500]", False, id="percent-is-not-a-wildcard"),
        pytest.param("a_b", '["a_b"]', True, id="underscore-matches-itself"),
        pytest.param("a_b", '["axb"]', False, id="underscore-is-not-a-wildcard"),
        pytest.param("C:\\tmp", '["C:\\tmp\\x"]', True, id="backslash-matches-itself"),
        pytest.param("C:\\tmp", '["C:tmp"]', False, id="backslash-is-required"),
        pytest.param("Alice", '[42, "alice@example.com"]', True, id="ascii-case-insensitive"),
        pytest.param("ALICE@EXAMPLE", '[42, "alice@example.com"]', True, id="ascii-case-insensitive-upper"),
        pytest.param("bob", '[42, "alice@example.com"]', False, id="absent"),
    ],
)
def test_the_like_pattern_matches_literally_in_sqlite(needle, haystack, matches):
    with sqlite3.connect(":memory:") as connection:
        (result,) = connection.execute(
            "SELECT ? LIKE ? ESCAPE '\\'", (haystack, like_pattern(needle))
        ).fetchone()
    connection.close()
    assert bool(result) is matches
