"""Pronunciation lexicons: graphemes to an alias or phonemes, per job or project.

Two file formats are read by :func:`load_lexicon` (the only function here that does
I/O), chosen by extension: ``.pls`` / ``.xml`` are W3C PLS 1.0, anything else is the
simple format:

.. code-block:: text

    # narrate lexicon: one entry per line, "graphemes = pronunciation"
    Nguyen = win                       # an alias: words to say instead
    tomato = /təˈmɑːtoʊ/               # IPA between slashes
    GIF = [cmu: JH IH1 F]              # phonemes in an alphabet: cmu, ipa, pinyin, espeak
    重庆 = [pinyin: chong2 qing4]
    SQL = sequel [cmu: S IY1 K W AH0 L] # an alias and phonemes: the alias is the
                                       # fallback where the engine cannot take them
    New York = [ipa: nuː ˈjɔːrk]       # several words are fine

Blank lines and ``#`` comments are ignored; ``=`` separates graphemes from the
pronunciation. An entry whose graphemes are all lower case matches any case ("nasa"
matches "NASA"); otherwise the case must match. Entries match whole words (CJK
entries match anywhere) and the longest entry wins where entries overlap.

PLS: every ``<lexeme>`` gives one or more ``<grapheme>`` and a ``<phoneme>`` (in the
lexicon's ``alphabet``, or the phoneme's own ``alphabet`` attribute: ``ipa``,
``x-cmu``/``cmu``, ``x-pinyin``/``pinyin``, ``x-espeak``) and/or an ``<alias>``.

Each engine gets the entry in the form it honours (:mod:`ssml.dialects`): an alias
becomes ``<sub alias>``; phonemes become ``<phoneme>`` for CosyVoice (pinyin or CMU, IPA
converted to CMU) and espeak's own ``[[...]]`` phoneme input for espeak-ng (which ignores
``<phoneme>``). The written word stays in the text, so captions keep it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from narrate.errors import InputError
from ssml.annotations import Annotation, Phoneme, SpanSet, Sub
from ssml.ingest.clean import clean_markup_bytes, clean_text
from ssml.phonemes import to_cmu, to_espeak

MAX_LEXICON_BYTES = 5 * 1024 * 1024
_ALPHABETS = {
    "ipa": "ipa",
    "cmu": "cmu",
    "x-cmu": "cmu",
    "arpabet": "cmu",
    "pinyin": "pinyin",
    "x-pinyin": "pinyin",
    "py": "pinyin",
    "espeak": "x-espeak",
    "x-espeak": "x-espeak",
}
_BRACKET_RE = re.compile(r"\[\s*([A-Za-z-]+)\s*:\s*([^\]]+)\]")
_SLASH_RE = re.compile(r"/([^/]+)/")
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"


class LexiconError(InputError):
    """A lexicon file cannot be read."""


@dataclass(frozen=True)
class Entry:
    graphemes: tuple[str, ...]
    alias: str = ""
    ph: str = ""
    alphabet: str = ""  # ipa, cmu, pinyin, x-espeak

    @property
    def case_sensitive(self) -> bool:
        return any(g != g.lower() for g in self.graphemes)

    def annotation(self, start: int, end: int) -> Annotation:
        if self.ph:
            return Phoneme(start, end, self.ph, self.alphabet, alias=self.alias, origin="lexicon")
        return Sub(start, end, self.alias, origin="lexicon")


@dataclass(frozen=True)
class Lexicon:
    """A set of entries; :meth:`find` applies them to text."""

    entries: tuple[Entry, ...] = ()
    #: what reading the file had to change (characters that cannot be spoken, removed)
    warnings: tuple[str, ...] = ()

    def find(self, text: str, taken: list[tuple[int, int]] | None = None) -> list[Annotation]:
        """Annotations for every entry found in ``text`` outside the ``taken`` spans."""
        if not self.entries:
            return []
        used = SpanSet(taken or [])  # what others took, then what this lexicon took
        found: list[tuple[int, int, Entry]] = []
        for pattern, table in self._patterns():
            for m in pattern.finditer(text):
                a, b = m.span()
                key = m.group()
                entry = table.get(key) or table.get(key.lower())
                if entry is None or used.overlaps(a, b):
                    continue
                used.add(a, b)
                found.append((a, b, entry))
        return [entry.annotation(a, b) for a, b, entry in sorted(found, key=lambda f: f[0])]

    def _patterns(self) -> list[tuple[re.Pattern[str], dict[str, Entry]]]:
        exact: dict[str, Entry] = {}
        folded: dict[str, Entry] = {}
        for entry in self.entries:
            for g in entry.graphemes:
                (exact if entry.case_sensitive else folded)[
                    g if entry.case_sensitive else g.lower()
                ] = entry
        out = []
        for table, flags in ((exact, 0), (folded, re.IGNORECASE)):
            if not table:
                continue
            alternatives = "|".join(
                re.escape(g) if _CJK_RE.search(g) else rf"(?<!\w){re.escape(g)}(?!\w)"
                for g in sorted(table, key=len, reverse=True)
            )
            out.append((re.compile(alternatives, flags), table))
        return out


def parse_simple(text: str, name: str = "lexicon") -> Lexicon:
    """Parse the simple format (see the module docstring)."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        graphemes, equals, pronunciation = line.partition("=")
        graphemes, pronunciation = graphemes.strip(), pronunciation.strip()
        if not equals or not graphemes or not pronunciation:
            raise LexiconError(
                f"{name}, line {number}: expected 'graphemes = pronunciation', got {raw.strip()!r}",
                hint="write one entry per line, e.g. 'Nguyen = win' or 'tomato = /təˈmɑːtoʊ/'",
            )
        entries.append(_entry((graphemes,), pronunciation, name, number))
    return Lexicon(tuple(entries))


def _entry(graphemes: tuple[str, ...], pronunciation: str, name: str, number: int) -> Entry:
    ph, alphabet = "", ""
    bracket = _BRACKET_RE.search(pronunciation)
    slash = _SLASH_RE.search(pronunciation)
    if bracket:
        alphabet = _ALPHABETS.get(bracket.group(1).lower(), "")
        if not alphabet:
            raise LexiconError(
                f"{name}, line {number}: unknown phoneme alphabet {bracket.group(1)!r}",
                hint="use cmu, ipa, pinyin or espeak",
            )
        ph = bracket.group(2).strip()
        pronunciation = pronunciation.replace(bracket.group(), " ")
    elif slash:
        alphabet, ph = "ipa", slash.group(1).strip()
        pronunciation = pronunciation.replace(slash.group(), " ")
    alias = " ".join(pronunciation.split())
    if ph and alphabet in ("ipa", "cmu") and to_espeak(ph, alphabet) is None:
        raise LexiconError(
            f"{name}, line {number}: cannot read the {alphabet} phonemes {ph!r}",
            hint="check the symbols (CMU phones like 'T AH0 M EY1 T OW2'; IPA like 'təˈmeɪtoʊ')",
        )
    return Entry(graphemes, alias, ph, alphabet)


def parse_pls(data: bytes, name: str = "lexicon") -> Lexicon:
    """Parse a W3C PLS 1.0 document (see the module docstring)."""
    from ssml.ingest.safexml import parse_xml

    root = parse_xml(data, name)
    default_alphabet = _ALPHABETS.get(str(root.get("alphabet") or "ipa").lower(), "ipa")
    entries = []
    for lexeme in root.iter(f"{{{PLS_NS}}}lexeme", "lexeme"):
        graphemes = tuple(
            " ".join((g.text or "").split())
            for g in lexeme.iter(f"{{{PLS_NS}}}grapheme", "grapheme")
            if (g.text or "").strip()
        )
        if not graphemes:
            continue
        alias_el = next(iter(lexeme.iter(f"{{{PLS_NS}}}alias", "alias")), None)
        phoneme_el = next(iter(lexeme.iter(f"{{{PLS_NS}}}phoneme", "phoneme")), None)
        alias = " ".join((alias_el.text or "").split()) if alias_el is not None else ""
        ph, alphabet = "", ""
        if phoneme_el is not None and (phoneme_el.text or "").strip():
            ph = " ".join((phoneme_el.text or "").split())
            alphabet = _ALPHABETS.get(
                str(phoneme_el.get("alphabet") or "").lower(), default_alphabet
            )
            if alphabet in ("ipa", "cmu") and to_cmu(ph, alphabet) is None:
                ph, alphabet = "", ""
        if alias or ph:
            entries.append(Entry(graphemes, alias, ph, alphabet))
    return Lexicon(tuple(entries))


def load_lexicon(path: Path) -> Lexicon:
    """Read a lexicon file (PLS for ``.pls``/``.xml``, else the simple format)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LexiconError(
            f"cannot read the lexicon {str(path)!r}: {exc.strerror or exc}",
            hint="check the path given to --lexicon",
        ) from None
    if len(data) > MAX_LEXICON_BYTES:
        raise LexiconError(f"the lexicon {path.name} is larger than 5 MB", hint="split it")
    if path.suffix.lower() in (".pls", ".xml") or data.lstrip()[:5] == b"<?xml":
        data, cleaned = clean_markup_bytes(data)
        lexicon = parse_pls(data, path.name)
    else:
        try:
            cleaned = clean_text(data.decode("utf-8-sig"))
        except UnicodeDecodeError:
            raise LexiconError(
                f"the lexicon {path.name} is not UTF-8", hint="save it as UTF-8"
            ) from None
        lexicon = parse_simple(cleaned.text, path.name)
    warning = cleaned.warning(f"the lexicon {path.name}")
    return replace(lexicon, warnings=(warning,)) if warning else lexicon


__all__ = ["Entry", "Lexicon", "LexiconError", "load_lexicon", "parse_pls", "parse_simple"]
