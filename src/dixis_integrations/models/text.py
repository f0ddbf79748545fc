"""Greek text helpers: ELOT 743 (ISO 843 type 2) transliteration to Latin.

The rules follow the converter the Hellenic Police publishes for passports: accents
are dropped, non-Greek characters pass through unchanged, and the case of the source
word is kept (``"ΑΘΗΝΑ"`` -> ``"ATHINA"``, ``"Αθήνα"`` -> ``"Athina"``).
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["transliterate_elot743"]

_SINGLE: Final[dict[str, str]] = {
    "α": "a",
    "β": "v",
    "γ": "g",
    "δ": "d",
    "ε": "e",
    "ζ": "z",
    "η": "i",
    "θ": "th",
    "ι": "i",
    "κ": "k",
    "λ": "l",
    "μ": "m",
    "ν": "n",
    "ξ": "x",
    "ο": "o",
    "π": "p",
    "ρ": "r",
    "σ": "s",
    "ς": "s",
    "τ": "t",
    "υ": "y",
    "φ": "f",
    "χ": "ch",
    "ψ": "ps",
    "ω": "o",
}
# Fixed digraphs (the second letter must carry no diaeresis).
_PAIRS: Final[dict[str, str]] = {
    "ου": "ou",
    "γγ": "ng",
    "γκ": "gk",
    "γξ": "nx",
    "γχ": "nch",
}
# αυ/ευ/ηυ read "v" before a vowel or a voiced consonant, "f" otherwise (ELOT 743 note 9).
_VOICED_OR_VOWEL: Final = frozenset("αεηιουωβγδζλμνρ")
_VOWEL_Y: Final = frozenset("αεη")

_DIAERESIS: Final = "\u0308"


class _Letter:
    __slots__ = ("accented", "base", "diaeresis", "greek", "source", "upper")

    def __init__(self, char: str) -> None:
        self.source = char
        decomposed = unicodedata.normalize("NFD", char)
        base = decomposed[0]
        lower = base.lower()
        self.greek = lower in _SINGLE
        self.base = lower if self.greek else char
        self.upper = self.greek and base != lower
        self.diaeresis = _DIAERESIS in decomposed
        self.accented = len(decomposed) > 1 and not self.diaeresis


def _cased(latin: str, letters: list[_Letter], start: int, end: int) -> str:
    """Apply the case of the Greek source ``letters[start:end]`` to ``latin``."""
    first = letters[start]
    if not first.upper:
        return latin
    # Multi-letter output of an upper-case letter: all caps inside an all-caps word
    # ("ΘΑΝΟΣ" -> "THANOS"), title case before a lower-case letter ("Θάνος" -> "Thanos").
    if len(latin) == 1:
        return latin.upper()
    if end - start > 1:
        neighbour: _Letter | None = letters[start + 1]
    elif end < len(letters) and letters[end].base.isalpha():
        neighbour = letters[end]
    elif start > 0 and letters[start - 1].base.isalpha():
        neighbour = letters[start - 1]
    else:
        neighbour = None  # a lone initial such as "Θ." reads as "Th."
    if neighbour is not None and (neighbour.upper or neighbour.source.isupper()):
        return latin.upper()
    return latin[0].upper() + latin[1:]


def transliterate_elot743(text: str) -> str:
    """Transliterate Greek to Latin letters per ELOT 743 (ISO 843 type 2, as on passports).

    Letter rules: η, ι, υ -> i, i, y; θ -> th, χ -> ch, ψ -> ps, ξ -> x, ω -> o, β -> v.
    Digraphs: ου -> ou; γγ -> ng, γκ -> gk, γξ -> nx, γχ -> nch; αυ/ευ/ηυ -> av/ev/iv
    before a vowel or β γ δ ζ λ μ ν ρ and af/ef/if otherwise (also at the end of a word);
    μπ -> b at the start or end of a word and mp inside it ("Μπάμπης" -> "Bampis").
    A diaeresis splits a digraph ("Προϋπόθεση" -> "Proypothesi"). Accents are dropped.
    Characters that are not Greek letters are returned unchanged.

    Args:
        text: any string; Greek letters may be upper or lower case, monotonic or polytonic.

    Returns:
        The Latin transliteration, with each word's case kept.

    Examples:
        >>> transliterate_elot743("Ευάγγελος Θεσσαλονίκη")
        'Evangelos Thessaloniki'
    """
    letters = [_Letter(c) for c in text]
    n = len(letters)
    out: list[str] = []
    i = 0
    while i < n:
        cur = letters[i]
        if not cur.greek:
            out.append(cur.source)
            i += 1
            continue
        nxt = letters[i + 1] if i + 1 < n else None
        pair_ok = nxt is not None and nxt.greek and not nxt.diaeresis
        if pair_ok and nxt is not None:
            # Vowel + υ: a diphthong only when the accent (if any) is on the υ.
            if cur.base in _VOWEL_Y and nxt.base == "υ" and not cur.accented:
                after = letters[i + 2] if i + 2 < n else None
                voiced = after is not None and after.greek and after.base in _VOICED_OR_VOWEL
                latin = _SINGLE[cur.base] + ("v" if voiced else "f")
                out.append(_cased(latin, letters, i, i + 2))
                i += 2
                continue
            pair = cur.base + nxt.base
            if pair == "μπ":
                before = letters[i - 1] if i > 0 else None
                after = letters[i + 2] if i + 2 < n else None
                inside = before is not None and before.greek and after is not None and after.greek
                out.append(_cased("mp" if inside else "b", letters, i, i + 2))
                i += 2
                continue
            latin_pair = _PAIRS.get(pair)
            if latin_pair is not None and not (pair == "ου" and cur.accented):
                out.append(_cased(latin_pair, letters, i, i + 2))
                i += 2
                continue
        out.append(_cased(_SINGLE[cur.base], letters, i, i + 1))
        i += 1
    return "".join(out)
