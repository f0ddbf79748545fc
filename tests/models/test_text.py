"""ELOT 743 transliteration against published examples.

Sources for the expected values: the Hellenic Police passport converter
(passport.gov.gr GrElotConverter, as ported by the greeklish_iso843 gem, whose README
gives "Μπάμπης" -> "Bampis", "Άγγελος" -> "Angelos", "Ευάγγελος" -> "Evangelos" and the
pangram below), and the ELOT 743 table adopted by UN resolution V/19 (αυ/ευ/ηυ ->
av/ev/iv or af/ef/if, γγ -> ng, γξ -> nx, γχ -> nch, ου -> ou). Place names match the
official Latin spellings on Greek road signs.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dixis_integrations.models import transliterate_elot743

from .factories import GREEK_LETTERS


@pytest.mark.parametrize(
    ("greek", "latin"),
    [
        ("Αθήνα", "Athina"),
        ("ΑΘΗΝΑ", "ATHINA"),
        ("Θεσσαλονίκη", "Thessaloniki"),
        ("ΘΕΣΣΑΛΟΝΙΚΗ", "THESSALONIKI"),
        ("Ευάγγελος", "Evangelos"),
        ("ΕΥΑΓΓΕΛΟΣ", "EVANGELOS"),
        ("Άγγελος", "Angelos"),
        ("Μπάμπης", "Bampis"),
        ("ΜΠΑΜΠΗΣ", "BAMPIS"),
        (
            "ξεσκεπάζω την ψυχοφθόρα σας βδελυγμία",
            "xeskepazo tin psychofthora sas vdelygmia",
        ),
        ("Πειραιάς", "Peiraias"),
        ("Ηράκλειο", "Irakleio"),
        ("Χανιά", "Chania"),
        ("Κέρκυρα", "Kerkyra"),
        ("Ζάκυνθος", "Zakynthos"),
        ("Ναύπλιο", "Nafplio"),
        ("Λευκάδα", "Lefkada"),
        ("Εύβοια", "Evvoia"),
        ("Καλαμπάκα", "Kalampaka"),
        ("Ξάνθη", "Xanthi"),
        ("Ψυχικό", "Psychiko"),
        ("Παπαδόπουλος", "Papadopoulos"),
        ("Τσιμισκή", "Tsimiski"),
    ],
)
def test_published_elot743_examples(greek: str, latin: str) -> None:
    assert transliterate_elot743(greek) == latin


@pytest.mark.parametrize(
    ("greek", "latin"),
    [
        ("αυτός", "aftos"),  # υ -> f before a voiceless consonant
        ("Αύγουστος", "Avgoustos"),  # v before a voiced consonant
        ("Ευρώπη", "Evropi"),
        ("ευχαριστώ", "efcharisto"),
        ("ηύρα", "ivra"),
        ("Ζευς", "Zefs"),
        ("ευ", "ef"),  # at the end of a word: f
    ],
)
def test_au_eu_iu_read_v_or_f_by_the_next_letter(greek: str, latin: str) -> None:
    assert transliterate_elot743(greek) == latin


@pytest.mark.parametrize(
    ("greek", "latin"),
    [
        ("Μπαλί", "Bali"),  # start of a word
        ("ΚΟΜΠ", "KOB"),  # end of a word
        ("λάμπα", "lampa"),  # inside
        ("σφιγξ", "sfinx"),
        ("Αγχίαλος", "Anchialos"),
        ("Αγκίστρι", "Agkistri"),
        ("Ντίνος", "Ntinos"),
        ("Τζένη", "Tzeni"),
    ],
)
def test_consonant_digraphs(greek: str, latin: str) -> None:
    assert transliterate_elot743(greek) == latin


def test_diaeresis_keeps_vowels_apart() -> None:
    assert transliterate_elot743("Προϋπόθεση") == "Proypothesi"
    assert transliterate_elot743("Ευφροσύνη") == "Effrosyni"
    assert transliterate_elot743("ΑΫΛΟΣ") == "AYLOS"
    # An accent on the first vowel also means two syllables, not a diphthong.
    assert transliterate_elot743("άυλος") == "aylos"


def test_case_follows_the_source_word() -> None:
    assert transliterate_elot743("Θ. Παπαδόπουλος") == "Th. Papadopoulos"
    assert transliterate_elot743("ΟΔΟΣ ΘΗΣΕΩΣ 12") == "ODOS THISEOS 12"
    assert transliterate_elot743("Χίος ΧΙΟΣ χίος") == "Chios CHIOS chios"


def test_non_greek_characters_are_unchanged() -> None:
    text = "Ermou 25, 105 63 Athens (2nd floor) – €12.30 ✓"
    assert transliterate_elot743(text) == text
    assert transliterate_elot743("Οδός Ermou 25") == "Odos Ermou 25"
    assert transliterate_elot743("") == ""


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_characters=GREEK_LETTERS)))
def test_text_without_greek_letters_is_returned_as_is(text: str) -> None:
    if any("\u0370" <= c <= "\u03ff" or "\u1f00" <= c <= "\u1fff" for c in text):
        return  # other Greek code points (polytonic, symbols) are out of scope here
    assert transliterate_elot743(text) == text


@given(st.text(alphabet=GREEK_LETTERS + " .,-0123456789", max_size=40))
def test_output_has_no_greek_letters_left(text: str) -> None:
    out = transliterate_elot743(text)
    assert all(c not in GREEK_LETTERS for c in out)
    assert out.isascii()
