"""Text normalisation for speech: numbers, dates, times, money, units, abbreviations.

Pure. :func:`verbalize` finds these in English text and returns ``<sub alias>``
annotations (:class:`~ssml.annotations.Sub`, origin ``"number"``): the text, and so the
captions, keep the written form ("$3.50") while the engine says the words ("three
dollars and fifty cents"), and each written token gets one clean word time.

Rules, tried in this order at each place (the first that matches wins):

* **Money**: ``$5`` five dollars, ``$1`` one dollar, ``$3.50`` three dollars and fifty
  cents, ``£2.5 million`` two point five million pounds, ``€10`` ten euros, ``¥100`` one
  hundred yen (``US$``, ``A$`` read as dollars).
* **Dates**: ``16 March 2024`` the sixteenth of March twenty twenty-four, ``March 16,
  2024`` March sixteenth, twenty twenty-four, ``2024-03-16`` (ISO) the sixteenth of March
  twenty twenty-four. Numeric ``12/05/2024`` is left alone (day and month order is
  ambiguous).
* **Times**: ``10:30`` ten thirty, ``9:05 am`` nine oh five a m, ``10:00`` ten
  o'clock, ``14:00`` fourteen hundred, ``3pm`` three p m.
* **Percentages**: ``50%`` fifty percent.
* **Ordinals**: ``1st`` first, ``22nd`` twenty-second, ``100th`` one hundredth.
* **Decades**: ``1990s`` nineteen nineties.
* **Units** after a number: ``5 km`` five kilometres, ``1 kg`` one kilogram, ``20°C``
  twenty degrees Celsius, ``100 km/h`` one hundred kilometres per hour.
* **Years**: a four-digit number from 1100 to 2099 after "in", "since", "by", "from",
  "until", "to", "of", "year", "circa", or before "BC"/"AD"/"CE", and decades
  ("1990s" nineteen nineties).
* **Big and decimal numbers**: ``1,000,000`` one million, ``3.14`` three point one
  four, ``-5`` minus five (only with thousands separators or a decimal point; plain
  integers are left to the engine, which reads them well).
* **Abbreviations**: e.g. for example, i.e. that is, etc. et cetera, vs. versus,
  approx. approximately, Dr. Doctor, Mr. Mister, Mrs. Missus, Prof. Professor, No. 5
  number 5, Fig. figure, Jan. January (and the other months).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ssml.annotations import SpanSet, Sub
from ssml.latex.symbols import UNITS
from ssml.numbers import cardinal, decimal, ordinal_word, year

_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_MONTH_ABBREVIATIONS = {m[:3].lower(): m for m in _MONTHS} | {"sept": "September"}
_MONTH_RE = "|".join(_MONTHS) + "|" + "|".join(m[:3] + r"\.?" for m in _MONTHS)
_CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
_CURRENCIES |= {"€": ("euro", "euros", "cent", "cents"), "¥": ("yen", "yen", "", "")}
_SCALE_WORDS = {"k": "thousand", "m": "million", "bn": "billion", "b": "billion"}
_ABBREVIATIONS = {
    "e.g.": "for example",
    "i.e.": "that is",
    "etc.": "et cetera",
    "vs.": "versus",
    "approx.": "approximately",
    "Dr.": "Doctor",
    "Mr.": "Mister",
    "Mrs.": "Missus",
    "Prof.": "Professor",
    "Fig.": "figure",
    "fig.": "figure",
    "No.": "number",
    "cf.": "compare",
}
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_UNIT_NAMES = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))

_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "money",
        re.compile(
            rf"(?<![\w$])(?:US|A|C|NZ|HK)?(?P<cur>[$£€¥])(?P<num>{_NUMBER})"
            r"(?:\s?(?P<scale>million|billion|thousand|trillion|bn|k|m)\b)?"
        ),
    ),
    (
        "date_dmy",
        re.compile(
            rf"\b(?P<day>[0-3]?\d)(?:st|nd|rd|th)?\s+(?P<month>{_MONTH_RE})\s+(?P<year>\d{{4}})\b"
        ),
    ),
    (
        "date_mdy",
        re.compile(
            rf"\b(?P<month>{_MONTH_RE})\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?(?:,\s*(?P<year>\d{{4}}))?\b"
        ),
    ),
    ("date_iso", re.compile(r"\b(?P<year>[12]\d{3})-(?P<month>[01]\d)-(?P<day>[0-3]\d)\b")),
    (
        "time",
        re.compile(r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?:\s?(?P<ampm>[ap]\.?m\.?)(?!\w))?"),
    ),
    ("time_short", re.compile(r"\b(?P<h>1[0-2]|[1-9])\s?(?P<ampm>[ap]\.?m\.?)(?!\w)", re.I)),
    ("percent", re.compile(rf"(?<![\w.])(?P<num>-?(?:{_NUMBER}))\s?%")),
    ("decade", re.compile(r"\b(?P<num>1[1-9]\d0|20[0-9]0)s\b")),
    ("ordinal", re.compile(r"\b(?P<num>\d+)(?P<suffix>st|nd|rd|th)\b")),
    (
        "unit",
        re.compile(
            rf"(?<![\w.])(?P<num>{_NUMBER})\s?(?P<unit>°[CF]|(?:{_UNIT_NAMES})(?:/(?:{_UNIT_NAMES}))?)(?![\w/])"
        ),
    ),
    (
        "year",
        re.compile(
            r"(?:(?<=\bin )|(?<=\bsince )|(?<=\bby )|(?<=\bfrom )|(?<=\buntil )|(?<=\bto )"
            r"|(?<=\bof )|(?<=\byear )|(?<=\bcirca )|(?<=\bIn )|(?<=\bSince )|(?<=\bBy ))"
            r"(?P<num>1[1-9]\d\d|20\d\d)\b(?!,\d)|\b(?P<num2>\d{3,4})\s?(?P<era>BC|AD|CE|BCE)\b"
        ),
    ),
    (
        "number",
        re.compile(r"(?<![\w.,])(?P<num>-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+\.\d+)(?![\w]|[.,]\d)"),
    ),
    (
        "abbreviation",
        re.compile(
            r"(?<!\w)(?:"
            + "|".join(re.escape(a) for a in sorted(_ABBREVIATIONS, key=len, reverse=True))
            + r")(?=\s|$|[,;:)])"
            + rf"|(?<!\w)(?P<mon>{'|'.join(m[:3] for m in _MONTHS)}|Sept)\.(?=\s+\d)"
        ),
    ),
]


def _money(m: re.Match[str]) -> str:
    one, many, small_one, small_many = _CURRENCIES[m.group("cur")]
    number = m.group("num").replace(",", "")
    scale = m.group("scale")
    if scale:
        words = _SCALE_WORDS.get(scale.lower(), scale.lower())
        amount = decimal(number) if "." in number else cardinal(int(number))
        return f"{amount} {words} {many}"
    whole, _point, fraction = number.partition(".")
    spoken = f"{cardinal(int(whole))} {one if whole == '1' else many}"
    if fraction and small_one:
        cents = int((fraction + "0")[:2])
        if cents:
            spoken += f" and {cardinal(cents)} {small_one if cents == 1 else small_many}"
    elif fraction:
        spoken = f"{decimal(number)} {many}"
    return spoken


def _month(name: str) -> str:
    return _MONTH_ABBREVIATIONS.get(name.rstrip(".").lower()[:4], "") or _MONTH_ABBREVIATIONS.get(
        name.rstrip(".").lower()[:3], name
    )


def _date(m: re.Match[str], kind: str) -> str | None:
    day = int(m.group("day"))
    if not 1 <= day <= 31:
        return None
    if kind == "date_iso":
        month_number = int(m.group("month"))
        if not 1 <= month_number <= 12:
            return None
        month = _MONTHS[month_number - 1]
    else:
        month = _month(m.group("month"))
    spoken_year = f" {year(int(m.group('year')))}" if m.group("year") else ""
    if kind == "date_mdy":
        return f"{month} {ordinal_word(day)}{',' if spoken_year else ''}{spoken_year}"
    return f"the {ordinal_word(day)} of {month}{spoken_year}"


def _time(m: re.Match[str]) -> str | None:
    hour = int(m.group("h"))
    minute = int(m.group("m")) if "m" in m.groupdict() and m.group("m") else 0
    ampm = m.group("ampm")
    suffix = f" {ampm.replace('.', '')[0].lower()} m" if ampm else ""
    if minute == 0:
        if ampm:
            return f"{cardinal(hour)}{suffix}"
        return (
            f"{cardinal(hour)} hundred" if hour > 12 or hour == 0 else f"{cardinal(hour)} o'clock"
        )
    minutes = f"oh {cardinal(minute)}" if minute < 10 else cardinal(minute)
    return f"{cardinal(hour)} {minutes}{suffix}"


def _number(text: str) -> str:
    text = text.replace(",", "")
    negative = text.startswith("-")
    body = text.lstrip("-")
    spoken = decimal(body) if "." in body else cardinal(int(body))
    return f"minus {spoken}" if negative else spoken


def _unit(m: re.Match[str]) -> str | None:
    number = m.group("num")
    unit = m.group("unit")
    amount = _number(number)
    plural = number not in ("1", "1.0")
    if unit in ("°C", "°F"):
        scale = "Celsius" if unit == "°C" else "Fahrenheit"
        return f"{amount} {'degrees' if plural else 'degree'} {scale}"
    top, _slash, bottom = unit.partition("/")
    if top not in UNITS or (bottom and bottom not in UNITS):
        return None
    if len(top) == 1 and top not in ("m", "g", "s", "h", "K", "V", "W", "N", "J", "A", "L"):
        return None
    one, many = UNITS[top]
    spoken = f"{amount} {many if plural else one}"
    if bottom:
        spoken += f" per {UNITS[bottom][0]}"
    return spoken


def _decade(m: re.Match[str]) -> str:
    spoken = year(int(m.group("num")))
    if spoken.endswith("y"):
        return spoken[:-1] + "ies"
    if spoken.endswith("hundred"):
        return spoken + "s"
    return spoken + "s"


def _year(m: re.Match[str]) -> str:
    if m.group("num"):
        return year(int(m.group("num")))
    era = m.group("era")
    spoken_era = {"BC": "B C", "AD": "A D", "CE": "C E", "BCE": "B C E"}[era]
    return f"{year(int(m.group('num2')))} {spoken_era}"


def _abbreviation(m: re.Match[str]) -> str:
    if m.group("mon"):
        return _month(m.group("mon"))
    return _ABBREVIATIONS[m.group()]


_SPEAKERS: dict[str, Callable[[re.Match[str]], str | None]] = {
    "money": _money,
    "date_dmy": lambda m: _date(m, "date_dmy"),
    "date_mdy": lambda m: _date(m, "date_mdy"),
    "date_iso": lambda m: _date(m, "date_iso"),
    "time": _time,
    "time_short": _time,
    "percent": lambda m: f"{_number(m.group('num'))} percent",
    "ordinal": lambda m: ordinal_word(int(m.group("num"))) if _ordinal_suffix_ok(m) else None,
    "unit": _unit,
    "decade": _decade,
    "year": _year,
    "number": lambda m: _number(m.group("num")),
    "abbreviation": _abbreviation,
}


def _ordinal_suffix_ok(m: re.Match[str]) -> bool:
    n = int(m.group("num"))
    expected = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return m.group("suffix") == expected


def verbalize(
    text: str, taken: Sequence[tuple[int, int]] = (), *, start: int = 0, end: int | None = None
) -> list[Sub]:
    """Sub annotations for the numbers, dates, ... of ``text`` (see the module docstring).

    Spans in ``taken`` (formulas, lexicon entries) are left alone.
    """
    end = len(text) if end is None else end
    found: list[tuple[int, int, str]] = []
    occupied = SpanSet(taken)
    for kind, pattern in _RULES:
        for m in pattern.finditer(text, start, end):
            a, b = m.span()
            if occupied.overlaps(a, b):
                continue
            spoken = _SPEAKERS[kind](m)
            if spoken:
                found.append((a, b, spoken))
                occupied.add(a, b)
    return [Sub(a, b, spoken, origin="number") for a, b, spoken in sorted(found)]
