"""Numbers read from text as written: ASCII digits only, where int() and float() take
other scripts' digits, signs, spaces, underscores, exponents, inf and nan."""

from __future__ import annotations

import pytest

from shared import numerals

# Each of these int() or float() reads as a number.
NOT_AS_WRITTEN = ["١٢", "１２", "߁", "+12", "-12", " 12", "12 ", "1_000", "12\n", "٣.٥",
                  "1e3", "inf", "nan", "Infinity"]


@pytest.mark.parametrize("text", NOT_AS_WRITTEN + ["", "²", "1.", ".5", "1.2.3", "12a",
                                                   "0x10", "9" * 31])
def test_only_ascii_digits_and_one_point_are_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        numerals.whole(text)
    with pytest.raises(ValueError):
        numerals.decimal(text)


def test_python_reads_each_of_those_as_a_number() -> None:
    assert [t for t in NOT_AS_WRITTEN if not _python_reads(t)] == []


def test_numbers_as_written_are_read() -> None:
    assert numerals.whole("0") == 0 and numerals.whole("042") == 42
    assert numerals.whole("9" * 30) == int("9" * 30)
    assert numerals.decimal("10") == 10.0 and numerals.decimal("0.25") == 0.25
    assert numerals.whole("7", canonical=True) == 7 and numerals.whole("0", canonical=True) == 0
    for text in ("07", "00"):
        with pytest.raises(ValueError):
            numerals.whole(text, canonical=True)


def _python_reads(text: str) -> bool:
    for read in (int, float):
        try:
            read(text)
        except ValueError:
            continue
        return True
    return False
