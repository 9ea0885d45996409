"""Finding a place by name the way people type it: without diacritics, in any case.

"ha long", "Hạ Long" and "HA LONG" all find Phường Hạ Long; the kind word (phường, xã, đặc
khu, tỉnh, thành phố) may be left out. Folding is Unicode decomposition without the combining
marks, with đ -> d, which NFD alone leaves as it is.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_SPACES = re.compile(r"\s+")
KIND_WORDS = ("phuong ", "xa ", "dac khu ", "tinh ", "thanh pho ", "thi tran ")


def fold(text: str) -> str:
    """Lower case, no diacritics, single spaces: the form names are compared in."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _SPACES.sub(" ", bare.lower()).strip()


def _short(folded: str) -> str:
    for word in KIND_WORDS:
        if folded.startswith(word):
            return folded[len(word) :]
    return folded


@dataclass(frozen=True)
class Place:
    """Something that can be found: its code, its name and what holds it (for the list)."""

    code: str
    name: str
    within: str = ""


def search(places: Iterable[Place], query: str, limit: int = 10) -> list[Place]:
    """Places whose name matches `query`: exact names first, then prefixes, then parts."""
    wanted = _short(fold(query))
    if not wanted:
        return []
    # Typed with its diacritics, a name is meant exactly: Hạ Long before Hà Long.
    typed = _SPACES.sub(" ", query.lower()).strip()
    ranked: list[tuple[int, str, Place]] = []
    for place in places:
        name = fold(place.name)
        short = _short(name)
        if typed in (place.name.lower(), place.name.lower().split(" ", 1)[-1]):
            rank = 0
        elif wanted in (short, name):
            rank = 1
        elif short.startswith(wanted):
            rank = 2
        elif wanted in name:
            rank = 3
        else:
            continue
        ranked.append((rank, place.code, place))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [p for _, _, p in ranked[:limit]]
