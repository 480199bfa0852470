"""What the ledger keeps of a reported job to push it again, and the exact payload a restart pushes.

People see a job's arguments with secrets masked (``domain.redaction``); the job itself must get
them unmasked. So when masking changed anything, or a payload key looks secret, the whole payload
is kept encrypted with ``SUPERVISOR_SECRET_KEY`` (Fernet from ``cryptography``: AES-128-CBC with
an HMAC, keys rotated by listing the new one first), and is never shown. Without a key, nothing
secret is kept and a restart refuses the job, saying how to make such jobs restartable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.payload import (
    ACTIVE_JOB_WRAPPERS,
    MAX_ARGUMENTS_DEPTH,
    PayloadForm,
    display_class,
    job_timestamp,
    may_be_deeper_than,
    nesting_depth,
    payload_keys,
    push_keys,
)
from sidekiq_supervisor.domain.redaction import may_need_redaction, redact

SECRET_KEY_HINT = (
    "set SUPERVISOR_SECRET_KEY (sidekiq-supervisor secret-key prints a new one) so that the exact "
    "arguments of such jobs are kept encrypted"
)


class InvalidSecretKey(ValueError):
    """A configured secret key is not a Fernet key."""


class PayloadUnavailable(ValueError):
    """The job cannot be pushed again exactly; the message says why, for the operator."""


class PayloadSeal:
    """Encrypts kept payloads with the first configured key; opens them with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys]) if keys else None
        except ValueError:
            raise InvalidSecretKey(
                "SUPERVISOR_SECRET_KEY must hold Fernet keys (32 url-safe base64 bytes), comma-separated"
            ) from None

    @staticmethod
    def new_key() -> str:
        """A fresh key for ``SUPERVISOR_SECRET_KEY``."""
        return Fernet.generate_key().decode()

    @property
    def enabled(self) -> bool:
        """Whether a key is configured."""
        return self._fernet is not None

    def seal(self, plaintext: bytes) -> str:
        """``plaintext`` encrypted with the current key (the caller checked ``enabled``)."""
        assert self._fernet is not None
        return self._fernet.encrypt(plaintext).decode()

    def open(self, token: str) -> bytes:
        """The plaintext of a sealed payload; ``PayloadUnavailable`` if no configured key opens it."""
        if self._fernet is None:
            raise PayloadUnavailable(
                f"its payload is kept encrypted and no key is configured: {SECRET_KEY_HINT}"
            )
        try:
            return self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise PayloadUnavailable(
                "its payload was encrypted with a key that is no longer in SUPERVISOR_SECRET_KEY"
            ) from None


@dataclass(frozen=True, slots=True)
class JobContent:
    """What the ledger stores of a report's job: the class and arguments people see, and the payload
    keys a restart needs (``payload_form`` is ``None`` when there are none beyond those)."""

    job_class: str
    arguments: str
    payload_form: PayloadForm | None = None
    payload: str | None = None


def job_content(
    job_class: str,
    arguments: str,
    payload: Mapping[str, Any] | None,
    words: tuple[str, ...],
    seal: PayloadSeal,
) -> JobContent:
    """The stored content of a validated report: ``arguments`` is its exact canonical JSON text."""
    keys = payload_keys(payload) if payload else {}
    if (
        not keys
        and job_class not in ACTIVE_JOB_WRAPPERS
        and not (words and may_need_redaction(arguments, words))
    ):
        return JobContent(job_class, arguments)  # the seed's usual report: nothing more to keep
    value = json_text.loads(arguments)
    shown_class = display_class(job_class, keys, value)
    if shown_class != job_class:
        keys = {"class": job_class, **keys}
    keys = _without_defaults(keys, shown_class)
    masked_arguments, masked = redact(value, words)
    shown_arguments = json_text.dumps(masked_arguments).decode() if masked else arguments
    keys_text = json_text.dumps(keys) if keys else b""
    if masked or (keys and redact(keys, words)[1]):
        if not seal.enabled:
            return JobContent(shown_class, shown_arguments, PayloadForm.WITHHELD)
        whole = _with_arguments(keys_text or b"{}", arguments.encode())
        return JobContent(shown_class, shown_arguments, PayloadForm.SEALED, seal.seal(whole))
    if not keys:
        return JobContent(shown_class, shown_arguments)
    return JobContent(shown_class, shown_arguments, PayloadForm.PLAIN, keys_text.decode())


def restart_payload(
    *,
    job_class: str,
    queue: str,
    arguments: str,
    payload_form: str | None,
    payload: str | None,
    jid: str,
    now: float,
    sidekiq_major: int,
    seal: PayloadSeal,
) -> bytes:
    """The exact JSON payload that pushes a stored job again as ``jid``; ``PayloadUnavailable`` if
    it cannot be pushed exactly."""
    form = PayloadForm(payload_form) if payload_form else None
    if form is PayloadForm.WITHHELD:
        raise PayloadUnavailable(
            f"its arguments were masked as secret and kept nowhere (no key was configured): {SECRET_KEY_HINT}"
        )
    _refuse_too_deep(arguments)
    keys, arguments_text = _kept(form, payload, arguments.encode(), seal)
    head = push_keys(
        keys, job_class=job_class, queue=queue, jid=jid, timestamp=job_timestamp(now, sidekiq_major)
    )
    try:
        return _with_arguments(json_text.dumps(head), arguments_text)
    except (TypeError, ValueError, RecursionError) as exc:
        raise PayloadUnavailable(f"its payload cannot be encoded: {exc}") from None


def kept_keys(payload_form: str | None, payload: str | None, seal: PayloadSeal) -> dict[str, Any] | None:
    """The job's own keys kept for it, plain or sealed (its ``sidekiq_options`` among them), or
    None when none were kept or they cannot be read (a sealed payload without its key)."""
    form = PayloadForm(payload_form) if payload_form else None
    if form not in (PayloadForm.PLAIN, PayloadForm.SEALED):
        return None
    try:
        return _kept(form, payload, b"[]", seal)[0]
    except PayloadUnavailable:
        return None


def _kept(
    form: PayloadForm | None, payload: str | None, arguments_text: bytes, seal: PayloadSeal
) -> tuple[dict[str, Any], bytes]:
    """The kept keys, and the exact arguments (a sealed payload holds its own); ``PayloadUnavailable``
    if they cannot be read."""
    keys_text: bytes = b"{}"
    if form is PayloadForm.PLAIN and payload:
        keys_text = payload.encode()
    elif form is PayloadForm.SEALED and payload:
        keys_text, arguments_text = _split_sealed(seal.open(payload))
    try:
        keys = json_text.loads(keys_text)
    except json_text.InvalidJSON:
        raise PayloadUnavailable("its kept payload is not valid JSON") from None
    if not isinstance(keys, dict):
        raise PayloadUnavailable("its kept payload is not a JSON object")
    return keys, arguments_text


def _refuse_too_deep(arguments: str) -> None:
    """Arguments stored before ingest limited nesting may be deeper than Sidekiq can read."""
    if not may_be_deeper_than(arguments, MAX_ARGUMENTS_DEPTH):
        return
    try:
        depth = nesting_depth(json_text.loads(arguments))
    except json_text.InvalidJSON:
        depth = MAX_ARGUMENTS_DEPTH + 1
    if depth > MAX_ARGUMENTS_DEPTH:
        raise PayloadUnavailable(
            f"its arguments nest deeper than {MAX_ARGUMENTS_DEPTH} levels, more than Sidekiq can read"
        )


def _without_defaults(keys: dict[str, Any], shown_class: str) -> dict[str, Any]:
    """Drop what a restart would write anyway, so a plain job keeps nothing extra."""
    return {
        key: value
        for key, value in keys.items()
        if not (key == "class" and value == shown_class) and not (key == "retry" and value is True)
    }


def _with_arguments(keys_text: bytes, arguments_text: bytes) -> bytes:
    """A JSON object's text with ``"args"`` spliced in as given: exact, whatever the arguments hold."""
    body = keys_text.rstrip()[:-1]  # the object without its closing brace
    separator = b"," if body.strip() != b"{" else b""
    return body + separator + b'"args":' + arguments_text + b"}"


def _split_sealed(plaintext: bytes) -> tuple[bytes, bytes]:
    """The payload keys and the exact arguments of a sealed document."""
    try:
        document = json_text.loads(plaintext)
        arguments = document.pop("args")
        return json_text.dumps(document), json_text.dumps(arguments)
    except (json_text.InvalidJSON, AttributeError, KeyError, TypeError, ValueError):
        raise PayloadUnavailable("its kept payload cannot be read") from None
