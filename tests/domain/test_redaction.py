"""Masking the values of secret-looking keys in job arguments."""

from __future__ import annotations

from sidekiq_supervisor.domain.redaction import MASK, may_need_redaction, redact

WORDS = ("password", "token")


def test_it_masks_matching_keys_at_any_depth_in_any_case_and_keeps_the_rest():
    arguments = [
        42,
        "alice@example.com",
        {"email": "a@b.c", "Password": "hunter2", "nested": [{"api_token": {"raw": "x"}, "n": 1}]},
        [{"job_class": "SignupJob", "arguments": [{"password_confirmation": "hunter2"}]}],
    ]

    redacted, masked = redact(arguments, WORDS)

    assert masked is True
    assert redacted == [
        42,
        "alice@example.com",
        {"email": "a@b.c", "Password": MASK, "nested": [{"api_token": MASK, "n": 1}]},
        [{"job_class": "SignupJob", "arguments": [{"password_confirmation": MASK}]}],
    ]
    assert arguments[2]["Password"] == "hunter2", "the input is left as it was"


def test_positional_values_and_unmatched_keys_are_kept():
    arguments = ["password", {"user": "token-holder"}, 3.5, None]

    assert redact(arguments, WORDS) == (arguments, False)


def test_no_words_means_no_redaction():
    assert redact([{"password": "x"}], ()) == ([{"password": "x"}], False)


def test_the_cheap_check_only_says_no_when_no_word_appears():
    assert may_need_redaction('[{"PassWord":"x"}]', WORDS) is True
    assert may_need_redaction('[1,"alice"]', WORDS) is False
