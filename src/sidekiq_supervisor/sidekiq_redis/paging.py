"""Pages of records and the clamping of the page arguments callers pass in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 25  # Sidekiq's Web UI default
MAX_PAGE_SIZE = 500  # one request never reads more than this many members


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a larger sequence: its items, and where they sit in the whole."""

    items: tuple[T, ...]
    total: int
    page: int
    size: int
    # True when a search stopped at its match limit, so ``total`` counts only what was found.
    truncated: bool = False

    @property
    def pages(self) -> int:
        """How many pages of ``size`` the whole holds (at least 1, so an empty whole has one page)."""
        return max(1, -(-self.total // self.size))


def clamp(value: int, low: int, high: int) -> int:
    """``value`` brought into ``[low, high]``."""
    return max(low, min(high, value))


def clamp_page(page: int, size: int) -> tuple[int, int]:
    """A page number of at least 1 and a size in ``[1, MAX_PAGE_SIZE]``."""
    return max(1, page), clamp(size, 1, MAX_PAGE_SIZE)


def slice_page(items: Sequence[T], page: int, size: int, *, truncated: bool = False) -> Page[T]:
    """The ``page``-th page of ``items`` already in memory (e.g. search matches, running jobs)."""
    page, size = clamp_page(page, size)
    start = (page - 1) * size
    return Page(tuple(items[start : start + size]), len(items), page, size, truncated)
