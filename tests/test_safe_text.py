"""What outside text may contain, and how a refused one is kept readable."""

import pytest

from mango_office import safe_text


@pytest.mark.parametrize(
    ("text", "strict", "multiline"),
    [
        ("79031234567", None, None),
        ("Иван Петров", None, None),
        ("a\x00b", "nul", "nul"),
        ("a\ud800b", "surrogate", "surrogate"),
        ("a\udfffb", "surrogate", "surrogate"),
        ("a\x07b", "control", "control"),
        ("a\x9bb", "control", "control"),  # C1
        ("a\x7fb", "control", "control"),
        ("+7 916 555 12 34\u202e", "control", "control"),  # right-to-left override
        ("a\u2066b", "control", "control"),
        ("שלום\u200f", None, None),  # a right-to-left mark is ordinary text
        ("line\nnext\ttab\r", "control", None),
    ],
)
def test_problem(text, strict, multiline):
    assert safe_text.problem(text) == strict
    assert safe_text.problem(text, multiline=True) == multiline


def test_storable_escapes_instead_of_dropping():
    kept = safe_text.storable("a\x00b\ud800c\x1bd\ne", 100)
    assert kept == "a\\u0000b\\ud800c\\u001bd\ne"
    assert safe_text.problem(kept, multiline=True) is None
    kept.encode("utf-8")
    assert safe_text.storable("a\nb", 100, multiline=False) == "a\\u000ab"


def test_storable_truncates_visibly():
    kept = safe_text.storable("x" * 10_000, 100)
    assert len(kept) == 100 and kept.endswith(safe_text.TRUNCATION_MARK)
    assert safe_text.storable("\x00" * 50, 100).endswith(safe_text.TRUNCATION_MARK)
    assert len(safe_text.storable("\x00" * 50, 100)) == 100
    assert safe_text.storable("short", 100) == "short"
    assert safe_text.storable(None, 10) == ""
    assert safe_text.storable(12, 10) == "12"
