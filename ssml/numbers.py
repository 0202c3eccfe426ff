"""English number words (pure): cardinals, ordinals, years, decimals, digit strings.

* :func:`cardinal` spells an integer: 21 -> "twenty-one", 1905 -> "one thousand nine
  hundred and five" (British "and" after hundreds), negative numbers start "minus".
  Integers of 16 or more digits are read digit by digit.
* :func:`ordinal_word` spells an ordinal: 1 -> "first", 22 -> "twenty-second".
* :func:`year` reads a year the way people say it: 1905 -> "nineteen oh five", 2000 ->
  "two thousand", 2024 -> "twenty twenty-four", 1800 -> "eighteen hundred".
* :func:`decimal` reads "3.14" -> "three point one four" and "0.5" -> "zero point five".
* :func:`digits` reads digit by digit: "007" -> "zero zero seven".
"""

from __future__ import annotations

UNIT_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS_WORDS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [
    (10**12, "trillion"),
    (10**9, "billion"),
    (10**6, "million"),
    (1000, "thousand"),
]
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
MAX_CARDINAL_DIGITS = 15


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = []
    if hundreds:
        words.append(f"{UNIT_WORDS[hundreds]} hundred")
    if rest:
        if hundreds:
            words.append("and")
        if rest < 20:
            words.append(UNIT_WORDS[rest])
        else:
            tens, unit = divmod(rest, 10)
            words.append(TENS_WORDS[tens] + (f"-{UNIT_WORDS[unit]}" if unit else ""))
    return " ".join(words)


def cardinal(n: int) -> str:
    """``n`` in words (see the module docstring)."""
    if n < 0:
        return "minus " + cardinal(-n)
    if len(str(n)) > MAX_CARDINAL_DIGITS:
        return digits(str(n))
    if n < 1000:
        return _below_thousand(n) or "zero"
    words = []
    rest = n
    for value, name in _SCALES:
        count, rest = divmod(rest, value)
        if count:
            words.append(f"{cardinal(count)} {name}")
    if rest:
        words.append(("and " if rest < 100 else "") + _below_thousand(rest))
    return " ".join(words)


def ordinal_word(n: int) -> str:
    """``n`` as an ordinal in words: 1 -> "first", 4 -> "fourth", 21 -> "twenty-first"."""
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    stem, hyphen, unit = last.rpartition("-")
    if unit in _ORDINAL_IRREGULAR:
        unit = _ORDINAL_IRREGULAR[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return f"{head}{sep}{stem}{hyphen}{unit}"


def year(n: int) -> str:
    """A year read as people say it (see the module docstring)."""
    if n < 1000 or n >= 10000:
        return cardinal(n)
    high, low = divmod(n, 100)
    if 2000 <= n < 2010:
        return cardinal(n)
    if low == 0:
        return f"{cardinal(high)} hundred"
    if low < 10:
        return f"{cardinal(high)} oh {UNIT_WORDS[low]}"
    return f"{cardinal(high)} {cardinal(low)}"


def digits(text: str) -> str:
    """Read every digit of ``text`` on its own."""
    return " ".join(UNIT_WORDS[int(c)] for c in text if c.isdigit())


def decimal(text: str) -> str:
    """``"3.14"`` -> "three point one four"; ``"1,000.5"`` -> "one thousand point five"."""
    whole, _point, fraction = text.replace(",", "").partition(".")
    spoken = cardinal(int(whole)) if whole else "zero"
    if fraction:
        spoken += " point " + digits(fraction)
    return spoken
