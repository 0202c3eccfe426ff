"""SSML dialects: compile annotated text to the markup each engine accepts, and check it.

A dialect is an object (:class:`Dialect`): what its engine's markup looks like is in its
methods and attributes, never in a switch on its name. Engines declare the dialect they
take (``renderer.engine.EngineSpec.dialect``); :data:`DIALECTS` maps names to the three
dialects:

``espeak`` (:data:`ESPEAK`: espeak-ng, and the stub engine)
    ``<speak>``, ``<break time>``, ``<sub alias>``, ``<say-as>`` (characters,
    ``tts:char``, ``tts:digits``), ``<emphasis>``, ``<prosody rate|pitch|volume>``,
    ``<voice xml:lang>``, ``<mark name>``, ``<s>``, ``<p>``. espeak ignores
    ``<phoneme>``, so a phoneme annotation is compiled to ``<sub alias="[[...]]">`` in
    espeak's own phoneme mnemonics (the engine enables espeak's ``[[...]]`` input), or
    to its fallback alias. Every ``<sub>`` is wrapped in a pair of marks
    (``<mark name="narrate-a3"/>...<mark name="narrate-z3"/>``, :data:`MARK_PREFIX`):
    espeak reports the words of an alias at the position of the word *after* the
    element, and the marks let :mod:`renderer.espeak` time the display text correctly.
    Single letters inside a formula's alias are respelled so espeak says the letter
    ("a" -> "eh"), and ``i-th`` becomes "eyeth". A language span becomes ``<voice
    xml:lang>`` (``zh`` -> ``cmn``). Literal ``[[`` in text is hidden behind a ``<sub>``
    so it is never taken for phonemes.

``cosyvoice`` (:data:`COSYVOICE`: Alibaba CosyVoice, reference section 6)
    ``<speak>`` (with ``rate``, ``pitch``, ``volume``, ... attributes), ``<break
    time>`` (50 ms to 10 s, at most 10 s in a row), ``<sub alias>``, ``<phoneme
    alphabet="py"|"cmu" ph>``, ``<say-as interpret-as>``, ``<soundEvent src>``. No
    ``<prosody>``, ``<emphasis>``, ``<voice>``, ``<mark>``, ``<p>``, ``<s>``: emphasis,
    prosody spans and language spans are dropped (their text is kept). IPA phonemes
    are converted to CMU where they can be, else the fallback alias is used.
    **Language hint**: the compiled ``<speak>`` carries ``xml:lang`` ("zh" or "en",
    from the script of the segment's text). It is narrate's hint for the request's
    ``language_hints``, not part of the service's SSML: the engine reads and removes
    it with :func:`language_hint` before sending. It reads LaTeX itself in Chinese text
    (``--latex passthrough``).

``piper`` (:data:`PIPER`: Piper voices, which take plain text and inline IPA only)
    ``<speak>``, ``<break time>`` (0 to 10 s: the engine inserts the silence),
    ``<sub alias>`` (numbers, formulas, lexicon aliases; a formula's lone letters are
    respelled as for espeak, whose phonemizer Piper uses), ``<phoneme alphabet="ipa"
    ph>`` (the engine sends it as Piper's inline ``[[ IPA ]]``; CMU is converted to
    espeak-style IPA, other alphabets fall back to their alias). ``<say-as>`` is read
    by narrate into a ``<sub>`` (letters, digits, dates, ...). No emphasis, prosody,
    voice or marks: their text is kept. The engine times words itself, from the
    phoneme alignments of the voice (:mod:`renderer.piper`).

Every dialect ends the body with ``"\\n"`` (espeak reads a final full stop after a tag
as "dot" otherwise), separates blocks with ``"\\n\\n"`` and a ``<break>``, and keeps the
text content equal to the segment text plus that final newline.

:func:`validate` checks a document against a dialect and returns every problem with its
line and column; :func:`check` raises :class:`UnsupportedMarkupError` (an
:class:`~narrate.errors.InputError`, exit code 2) when there is any.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from lxml import etree

from narrate.errors import InputError
from ssml.annotations import (
    Annotation,
    Break,
    Emphasis,
    Lang,
    Phoneme,
    Prosody,
    SayAs,
    Sub,
    is_leaf,
    sort_key,
)
from ssml.phonemes import to_cmu, to_espeak
from ssml.verbalize import verbalize

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
#: the prefix of the marks the espeak dialect puts around every ``<sub>``
MARK_PREFIX = "narrate-"

#: CosyVoice's say-as types (reference section 6)
COSYVOICE_SAY_AS = frozenset(
    [
        "cardinal",
        "digits",
        "telephone",
        "name",
        "address",
        "id",
        "characters",
        "punctuation",
        "date",
        "time",
        "currency",
        "measure",
    ]
)
ESPEAK_SAY_AS = frozenset({"characters", "tts:char", "tts:digits", "tts:key", "tts:word"})
#: say-as types a user's document may use: narrate reads the ones an engine cannot
SOURCE_SAY_AS = COSYVOICE_SAY_AS | ESPEAK_SAY_AS | {"spell-out", "ordinal"}
_HAN_RE = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_RE = re.compile(r"[A-Za-z]")
_LETTER_WORD_RE = re.compile(r"(?<![\w'-])([aA])(?![\w'-])")
_NTH_RE = re.compile(r"\b([a-zA-Z])-th\b")
_ESPEAK_LETTER_NAMES = {
    "a": "eh",
    "b": "bee",
    "c": "see",
    "d": "dee",
    "e": "ee",
    "f": "ef",
    "g": "jee",
    "h": "aitch",
    "i": "eye",
    "j": "jay",
    "k": "kay",
    "l": "el",
    "m": "em",
    "n": "en",
    "o": "oh",
    "p": "pee",
    "q": "cue",
    "r": "ar",
    "s": "ess",
    "t": "tee",
    "u": "you",
    "v": "vee",
    "w": "double you",
    "x": "ex",
    "y": "why",
    "z": "zee",
}
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: CMU phones as espeak-style IPA (what Piper's voices were trained on); a stress digit
#: 1 or 2 puts ˈ or ˌ before the vowel, as espeak writes it
_CMU_TO_IPA = {
    "AA": "ɑː",
    "AE": "æ",
    "AH": "ʌ",
    "AO": "ɔː",
    "AW": "aʊ",
    "AY": "aɪ",
    "EH": "ɛ",
    "ER": "ɜː",
    "EY": "eɪ",
    "IH": "ɪ",
    "IY": "iː",
    "OW": "oʊ",
    "OY": "ɔɪ",
    "UH": "ʊ",
    "UW": "uː",
    "B": "b",
    "CH": "tʃ",
    "D": "d",
    "DH": "ð",
    "F": "f",
    "G": "ɡ",
    "HH": "h",
    "JH": "dʒ",
    "K": "k",
    "L": "l",
    "M": "m",
    "N": "n",
    "NG": "ŋ",
    "P": "p",
    "R": "ɹ",
    "S": "s",
    "SH": "ʃ",
    "T": "t",
    "TH": "θ",
    "V": "v",
    "W": "w",
    "Y": "j",
    "Z": "z",
    "ZH": "ʒ",
}
#: IPA characters that mean nothing to Piper: delimiters and syllable dots
_IPA_STRIP_RE = re.compile(r"[/\[\]{}.]")


class UnsupportedMarkupError(InputError):
    """A document's SSML uses markup the chosen engine does not accept."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an SSML document, at a 1-based line and column."""

    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class _Spec:
    attributes: frozenset[str]
    required: frozenset[str] = frozenset()
    empty: bool = False  # must have no content


@dataclass
class _State:
    dialect: Dialect
    marks: int = 0


_COMMON_SPEAK = frozenset({"version", "xmlns", XML_LANG, "xml:base"})
_BREAK_RE = re.compile(r"^(\d+)(ms|s)$")
_PERCENT_RE = re.compile(r"^[+-]?\d+(\.\d+)?%$")
_PINYIN_RE = re.compile(r"^[a-zü:v]+[1-5]$")
_CMU_RE = re.compile(r"^[A-Z]{1,2}[0-2]?$")
_TEXT_ONLY = frozenset({"sub", "phoneme", "say-as"})
_ALTERNATIVES = {
    "prosody": "set --rate/--pitch/--volume for the whole render instead",
    "emphasis": "remove it",
    "voice": "choose the voice with --voice",
    "mark": "remove it",
    "audio": "remove it",
    "soundEvent": "remove it",
    "phoneme": "use <sub alias> or a lexicon entry",
}


# --- the dialects ---------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Dialect:
    """The SSML an engine takes: how annotations compile to it and what it accepts.

    Subclasses override the methods where their engine differs; the attributes say the
    rest. Instances are shared constants (:data:`ESPEAK`, :data:`COSYVOICE`,
    :data:`PIPER`).
    """

    name: str
    #: elements (and their attributes) a document sent to the engine may hold
    elements: Mapping[str, _Spec] = field(default_factory=dict)
    #: further elements a user's document may use, because narrate compiles them
    source_extras: Mapping[str, _Spec] = field(default_factory=dict)
    #: say-as types the engine reads itself
    say_as: frozenset[str] = frozenset()
    #: what to suggest for an element the engine does not take
    alternatives: Mapping[str, str] = field(default_factory=dict)
    #: the engine reads LaTeX itself in Chinese text (``--latex passthrough``)
    reads_latex: bool = False

    # compiling

    def speak_attributes(self, text: str) -> dict[str, str]:
        """Attributes of the compiled ``<speak>`` for a document reading ``text``."""
        return {}

    def break_time(self, ms: int) -> str:
        """A ``<break time>`` value for ``ms`` milliseconds of silence."""
        return f"{max(0, ms)}ms"

    def append_text(self, parent: etree._Element, text: str, state: _State) -> None:
        """Put plain ``text`` at the end of ``parent``."""
        _plain_text(parent, text)

    def leaf(self, parent: etree._Element, shown: str, a: Annotation, state: _State) -> None:
        """Compile a leaf annotation (sub, phoneme, say-as) over ``shown``."""
        self.append_text(parent, shown, state)

    def container(
        self, parent: etree._Element, a: Annotation, state: _State
    ) -> etree._Element | None:
        """The element a container annotation (emphasis, prosody, language) becomes,
        or None to keep its text without markup."""
        return None

    # checking

    def value_problems(self, element: etree._Element, name: str, source: bool) -> list[str]:
        """What is wrong with the attribute values of ``element`` (``<name>``)."""
        problems: list[str] = []
        get = element.get
        if name == "break" and get("time") is not None:
            m = _BREAK_RE.match(get("time") or "")
            if m is None:
                problems.append(f"break time {get('time')!r} is not like 500ms or 2s")
        if name == "sub" and get("alias") is not None and not (get("alias") or "").strip():
            problems.append("<sub> has an empty alias")
        if name == "say-as":
            allowed = SOURCE_SAY_AS if source else self.say_as
            if get("interpret-as") is not None and get("interpret-as") not in allowed:
                problems.append(
                    f"say-as interpret-as {get('interpret-as')!r} is not one of {sorted(allowed)}"
                )
        return problems

    def document_problems(
        self, elements: list[etree._Element], positions: list[tuple[int, int]]
    ) -> list[Problem]:
        """Problems of the document as a whole (beyond each element's own)."""
        return []


class EspeakDialect(Dialect):
    def append_text(self, parent: etree._Element, text: str, state: _State) -> None:
        if "[[" in text:  # espeak would read what follows as phoneme mnemonics
            head, _sep, rest = text.partition("[[")
            self.append_text(parent, head, state)
            sub = etree.SubElement(parent, "sub", alias="[ [")
            sub.text = "[["
            self.append_text(parent, rest, state)
            return
        _plain_text(parent, text)

    def leaf(self, parent: etree._Element, shown: str, a: Annotation, state: _State) -> None:
        alias: str | None = None
        if isinstance(a, Sub):
            alias = espeak_alias(a.alias) if a.formula is not None else a.alias
        elif isinstance(a, Phoneme):
            mnemonics = to_espeak(a.ph, a.alphabet)
            alias = f"[[{mnemonics}]]" if mnemonics else a.alias or None
        elif isinstance(a, SayAs):
            kind = {"digits": "tts:digits", "characters": "characters", "spell-out": "characters"}
            interpret = kind.get(a.interpret_as, a.interpret_as)
            if interpret in self.say_as:
                element = etree.SubElement(parent, "say-as")
                element.set("interpret-as", interpret)
                element.text = shown
                return
            alias = _verbalized(shown)  # a type espeak does not know: read it ourselves
        if not alias or not alias.strip():
            self.append_text(parent, shown, state)
            return
        k = state.marks
        state.marks += 1
        etree.SubElement(parent, "mark", name=f"{MARK_PREFIX}a{k}")
        sub = etree.SubElement(parent, "sub", alias=alias)
        sub.text = shown
        etree.SubElement(parent, "mark", name=f"{MARK_PREFIX}z{k}")

    def container(
        self, parent: etree._Element, a: Annotation, state: _State
    ) -> etree._Element | None:
        if isinstance(a, Emphasis):
            return etree.SubElement(parent, "emphasis", level=a.level)
        if isinstance(a, Lang):
            element = etree.SubElement(parent, "voice")
            element.set(XML_LANG, espeak_language(a.lang))
            return element
        if isinstance(a, Prosody):
            attributes = {}
            if a.rate is not None:
                attributes["rate"] = f"{round(a.rate * 100)}%"
            if a.pitch is not None:
                attributes["pitch"] = f"{round((a.pitch - 1) * 100):+d}%"
            if a.volume is not None:
                attributes["volume"] = _volume_word(a.volume)
            return etree.SubElement(parent, "prosody", attributes) if attributes else None
        return None

    def value_problems(self, element: etree._Element, name: str, source: bool) -> list[str]:
        problems = super().value_problems(element, name, source)
        if name == "prosody":
            for attribute in ("rate", "pitch"):
                value = element.get(attribute)
                if value is not None and not (_PERCENT_RE.match(value) or value in _NAMED_PROSODY):
                    problems.append(
                        f"prosody {attribute} {value!r} is not a percentage or a named value"
                    )
        return problems


_NAMED_PROSODY = frozenset(
    ["x-slow", "slow", "medium", "fast", "x-fast", "default", "x-low", "low", "high", "x-high"]
)


class CosyVoiceDialect(Dialect):
    def speak_attributes(self, text: str) -> dict[str, str]:
        language = script_language(text)
        return {XML_LANG: language} if language else {}

    def break_time(self, ms: int) -> str:
        return f"{min(10_000, max(50, ms))}ms"

    def leaf(self, parent: etree._Element, shown: str, a: Annotation, state: _State) -> None:
        if isinstance(a, Sub) and a.alias.strip():
            sub = etree.SubElement(parent, "sub", alias=a.alias)
            sub.text = shown
            return
        if isinstance(a, Phoneme):
            alphabet, ph = "", ""
            if a.alphabet == "pinyin":
                alphabet, ph = "py", a.ph
            elif a.alphabet == "cmu":
                alphabet, ph = "cmu", a.ph
            elif (converted := to_cmu(a.ph, a.alphabet)) is not None:
                alphabet, ph = "cmu", converted
            if alphabet and ph_valid(alphabet, ph, shown):
                element = etree.SubElement(parent, "phoneme", alphabet=alphabet, ph=ph)
                element.text = shown
                return
            if a.alias.strip():
                sub = etree.SubElement(parent, "sub", alias=a.alias)
                sub.text = shown
                return
        if isinstance(a, SayAs) and a.interpret_as in self.say_as:
            element = etree.SubElement(parent, "say-as")
            element.set("interpret-as", a.interpret_as)
            element.text = shown
            return
        self.append_text(parent, shown, state)

    def value_problems(self, element: etree._Element, name: str, source: bool) -> list[str]:
        problems = super().value_problems(element, name, source)
        get = element.get
        if name == "break" and (m := _BREAK_RE.match(get("time") or "")) is not None:
            value, unit = int(m.group(1)), m.group(2)
            if (unit == "ms" and not 50 <= value <= 10_000) or (
                unit == "s" and not 1 <= value <= 10
            ):
                problems.append(f"break time {get('time')!r} is outside 50ms-10000ms (1s-10s)")
        if name == "phoneme":
            alphabet = get("alphabet") or ""
            if source and alphabet in ("ipa", "x-cmu", "pinyin", "x-pinyin"):
                alphabet = {"ipa": "", "x-cmu": "cmu"}.get(alphabet, "py")
            if not alphabet and source:
                if to_cmu(get("ph") or "", "ipa") is None:
                    problems.append(f"phoneme ph {get('ph')!r} is IPA that cannot be read as CMU")
            elif alphabet not in ("py", "cmu"):
                problems.append(f"phoneme alphabet {alphabet!r} is not py or cmu")
            elif not ph_valid(alphabet, get("ph") or "", element.text or ""):
                problems.append(f"phoneme ph {get('ph')!r} is not valid {alphabet}")
        if name == "speak":
            for attribute, low, high in (
                ("rate", 0.5, 2.0),
                ("pitch", 0.5, 2.0),
                ("volume", 0, 100),
            ):
                value = get(attribute)
                if value is None:
                    continue
                try:
                    number = float(value)
                except ValueError:
                    problems.append(f"speak {attribute} {value!r} is not a number")
                    continue
                if not low <= number <= high:
                    problems.append(f"speak {attribute} {value} is outside {low}-{high}")
        return problems

    def document_problems(
        self, elements: list[etree._Element], positions: list[tuple[int, int]]
    ) -> list[Problem]:
        """CosyVoice caps consecutive breaks at 10 s in total."""
        problems: list[Problem] = []
        run = 0
        count = 0
        for k, element in enumerate(elements):
            if etree.QName(element).localname != "break":
                run = count = 0
                continue
            m = _BREAK_RE.match(element.get("time") or "1s")
            run += (int(m.group(1)) * (1000 if m.group(2) == "s" else 1)) if m else 1000
            count += 1
            if run > 10_000 and count > 1:
                line, column = positions[k] if k < len(positions) else (1, 1)
                problems.append(
                    Problem(line, column, "consecutive breaks add up to more than 10 s")
                )
            if (element.tail or "").strip():
                run = count = 0
        return problems


#: the longest single pause the Piper dialect asks its engine for
PIPER_MAX_BREAK_MS = 10_000


class PiperDialect(Dialect):
    def break_time(self, ms: int) -> str:
        return f"{min(PIPER_MAX_BREAK_MS, max(0, ms))}ms"

    def leaf(self, parent: etree._Element, shown: str, a: Annotation, state: _State) -> None:
        alias: str | None = None
        if isinstance(a, Sub):
            alias = espeak_alias(a.alias) if a.formula is not None else a.alias
        elif isinstance(a, Phoneme):
            ipa = piper_ipa(a.ph, a.alphabet)
            if ipa:
                element = etree.SubElement(parent, "phoneme", alphabet="ipa", ph=ipa)
                element.text = shown
                return
            alias = a.alias
        elif isinstance(a, SayAs):
            alias = _spelled(shown, a.interpret_as)
        if not alias or not alias.strip():
            self.append_text(parent, shown, state)
            return
        sub = etree.SubElement(parent, "sub", alias=alias)
        sub.text = shown

    def value_problems(self, element: etree._Element, name: str, source: bool) -> list[str]:
        problems = super().value_problems(element, name, source)
        get = element.get
        if name == "break" and not source:
            m = _BREAK_RE.match(get("time") or "")
            if m and int(m.group(1)) * (1000 if m.group(2) == "s" else 1) > PIPER_MAX_BREAK_MS:
                problems.append(f"break time {get('time')!r} is longer than 10 s")
        if name == "phoneme":
            alphabet = get("alphabet") or "ipa"
            ph = get("ph") or ""
            if not source and alphabet != "ipa":
                problems.append(f"phoneme alphabet {alphabet!r} is not ipa")
            elif "[[" in ph or "]]" in ph or not ph.strip():
                problems.append(f"phoneme ph {ph!r} is not an IPA string")
        return problems


def _plain_text(parent: etree._Element, text: str) -> None:
    if not text:
        return
    if len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def _verbalized(shown: str) -> str | None:
    """How narrate reads ``shown`` (a date, time, ...) when it is one token, or None."""
    spoken = verbalize(shown)
    if len(spoken) == 1 and spoken[0].start == 0 and spoken[0].end == len(shown):
        return spoken[0].alias
    return None


def _spelled(shown: str, interpret_as: str) -> str | None:
    """A say-as read into words: letters and digits one by one, or as narrate reads it."""
    if interpret_as in ("characters", "spell-out", "tts:char", "digits", "tts:digits"):
        names = [
            _DIGIT_NAMES[int(ch)] if ch.isdigit() else _ESPEAK_LETTER_NAMES.get(ch.lower(), ch)
            for ch in shown
            if ch.isalnum()
        ]
        return " ".join(names) or None
    return _verbalized(shown)


def piper_ipa(ph: str, alphabet: str) -> str | None:
    """Phonemes as the IPA Piper takes inline (``[[ ... ]]``), or None.

    IPA is kept as written (delimiters and syllable dots removed); CMU is converted to
    espeak-style IPA; other alphabets cannot be converted.
    """
    if alphabet == "ipa":
        ipa = _IPA_STRIP_RE.sub("", ph).strip()
    elif alphabet == "cmu":
        ipa = cmu_to_ipa(ph) or ""
    else:
        return None
    return ipa if ipa and "[[" not in ipa and "]]" not in ipa else None


def cmu_to_ipa(cmu: str) -> str | None:
    """``T AH0 M EY1 T OW2`` -> ``təmˈeɪtˌoʊ``; None if a phone is unknown."""
    out: list[str] = []
    for token in cmu.upper().split():
        m = re.fullmatch(r"([A-Z]{1,2})([012]?)", token)
        if not m or m.group(1) not in _CMU_TO_IPA:
            return None
        phone, digit = m.groups()
        symbol = _CMU_TO_IPA[phone]
        if phone == "AH" and digit in ("0", ""):
            symbol = "ə"
        if phone == "ER" and digit in ("0", ""):
            symbol = "ɚ"
        out.append({"1": "ˈ", "2": "ˌ"}.get(digit, "") + symbol)
    return "".join(out) or None


_SPEAK_SPEC = _Spec(_COMMON_SPEAK)
_SUB_SPEC = _Spec(frozenset({"alias"}), frozenset({"alias"}))

ESPEAK = EspeakDialect(
    "espeak",
    elements=MappingProxyType(
        {
            "speak": _SPEAK_SPEC,
            "break": _Spec(frozenset({"time", "strength"}), empty=True),
            "sub": _SUB_SPEC,
            "say-as": _Spec(
                frozenset({"interpret-as", "format", "detail"}), frozenset({"interpret-as"})
            ),
            "emphasis": _Spec(frozenset({"level"})),
            "prosody": _Spec(frozenset({"rate", "pitch", "volume", "range"})),
            "voice": _Spec(frozenset({XML_LANG, "gender", "age", "variant", "name"})),
            "mark": _Spec(frozenset({"name"}), frozenset({"name"}), empty=True),
            "s": _Spec(frozenset({XML_LANG})),
            "p": _Spec(frozenset({XML_LANG})),
        }
    ),
    source_extras=MappingProxyType(
        {
            "phoneme": _Spec(frozenset({"alphabet", "ph"}), frozenset({"ph"})),
            "lang": _Spec(frozenset({XML_LANG})),
        }
    ),
    say_as=ESPEAK_SAY_AS,
    alternatives=MappingProxyType(
        {**_ALTERNATIVES, "soundEvent": "remove it (espeak cannot insert sounds)"}
    ),
)

COSYVOICE = CosyVoiceDialect(
    "cosyvoice",
    elements=MappingProxyType(
        {
            "speak": _Spec(
                frozenset(
                    {
                        "voice",
                        "rate",
                        "pitch",
                        "volume",
                        "effect",
                        "effectValue",
                        "bgm",
                        "backgroundMusicVolume",
                        XML_LANG,
                    }
                )
            ),
            "break": _Spec(frozenset({"time"}), empty=True),
            "sub": _SUB_SPEC,
            "phoneme": _Spec(frozenset({"alphabet", "ph"}), frozenset({"alphabet", "ph"})),
            "soundEvent": _Spec(frozenset({"src"}), frozenset({"src"}), empty=True),
            "say-as": _Spec(frozenset({"interpret-as"}), frozenset({"interpret-as"})),
        }
    ),
    source_extras=MappingProxyType({"p": _Spec(frozenset()), "s": _Spec(frozenset())}),
    say_as=COSYVOICE_SAY_AS,
    alternatives=MappingProxyType(
        {
            **_ALTERNATIVES,
            "emphasis": "remove it (CosyVoice has no emphasis)",
            "audio": "remove it (use <soundEvent> on CosyVoice)",
        }
    ),
    reads_latex=True,
)

PIPER = PiperDialect(
    "piper",
    elements=MappingProxyType(
        {
            "speak": _SPEAK_SPEC,
            "break": _Spec(frozenset({"time"}), empty=True),
            "sub": _SUB_SPEC,
            "phoneme": _Spec(frozenset({"alphabet", "ph"}), frozenset({"ph"})),
        }
    ),
    source_extras=MappingProxyType(
        {
            "break": _Spec(frozenset({"time", "strength"}), empty=True),
            "say-as": _Spec(
                frozenset({"interpret-as", "format", "detail"}), frozenset({"interpret-as"})
            ),
            "p": _Spec(frozenset({XML_LANG})),
            "s": _Spec(frozenset({XML_LANG})),
        }
    ),
    alternatives=MappingProxyType(
        {
            **_ALTERNATIVES,
            "emphasis": "remove it (Piper has no emphasis)",
            "prosody": "set --rate/--volume for the whole render instead (Piper has no pitch)",
            "soundEvent": "remove it (Piper cannot insert sounds)",
        }
    ),
)

#: every dialect by name
DIALECTS: Mapping[str, Dialect] = MappingProxyType({d.name: d for d in (ESPEAK, COSYVOICE, PIPER)})


def dialect_for(dialect: Dialect | str) -> Dialect:
    """The dialect object for ``dialect`` (an object, or a name from :data:`DIALECTS`)."""
    if isinstance(dialect, Dialect):
        return dialect
    found = DIALECTS.get(dialect)
    if found is None:
        raise ValueError(f"unknown SSML dialect {dialect!r}")
    return found


def check_dialect(dialect: Dialect | str) -> None:
    dialect_for(dialect)


# --- compiling ------------------------------------------------------------------------


def compile_blocks(
    blocks: Sequence[tuple[str, Sequence[Annotation]]],
    *,
    pause_ms: int,
    dialect: Dialect | str,
) -> str:
    """A ``<speak>`` document for ``blocks`` (text and annotations) in ``dialect``."""
    chosen = dialect_for(dialect)
    speak = etree.Element("speak", chosen.speak_attributes("".join(text for text, _ in blocks)))
    state = _State(chosen)
    for number, (text, found) in enumerate(blocks):
        if number:
            chosen.append_text(speak, "\n\n", state)
        ordered = sorted(_usable(found, len(text)), key=sort_key)
        _insert(speak, text, 0, len(text), ordered, state)
        if number < len(blocks) - 1:
            etree.SubElement(speak, "break", time=chosen.break_time(pause_ms))
    chosen.append_text(speak, "\n", state)
    return str(etree.tostring(speak, encoding="unicode"))


def _usable(annotations: Sequence[Annotation], length: int) -> list[Annotation]:
    return [a for a in annotations if 0 <= a.start <= a.end <= length]


def _insert(
    parent: etree._Element,
    text: str,
    start: int,
    end: int,
    annotations: list[Annotation],
    state: _State,
) -> None:
    """Put ``text[start:end]`` into ``parent``, marked up by ``annotations`` (sorted)."""
    dialect = state.dialect
    pos = start
    i = 0
    while i < len(annotations):
        a = annotations[i]
        if a.start < pos:  # overlaps something already placed: drop it
            i += 1
            continue
        dialect.append_text(parent, text[pos : a.start], state)
        pos = a.start
        if isinstance(a, Break):
            if a.ms > 0:
                etree.SubElement(parent, "break", time=dialect.break_time(a.ms))
            i += 1
            continue
        j = i + 1
        inner: list[Annotation] = []
        while j < len(annotations) and annotations[j].start < a.end:
            if not is_leaf(a) and annotations[j].end <= a.end:
                inner.append(annotations[j])
            j += 1
        if is_leaf(a):
            dialect.leaf(parent, text[a.start : a.end], a, state)
        else:
            element = dialect.container(parent, a, state)
            _insert(element if element is not None else parent, text, a.start, a.end, inner, state)
        pos = a.end
        i = j
    dialect.append_text(parent, text[pos:end], state)


def _volume_word(volume: float) -> str:
    """espeak honours named volumes only (reference: a dB value is ignored)."""
    for limit, word in ((0.01, "silent"), (0.35, "x-soft"), (0.75, "soft"), (1.25, "medium")):
        if volume < limit:
            return word
    return "loud" if volume < 1.75 else "x-loud"


def espeak_language(lang: str) -> str:
    """The ``xml:lang`` espeak understands for a BCP 47 tag (``zh`` -> ``cmn``)."""
    base = lang.lower().split("-")[0]
    return {"zh": "cmn", "yue": "yue", "en": lang if "-" in lang else "en"}.get(base, lang)


def espeak_alias(alias: str) -> str:
    """A formula's spoken form respelled where espeak would misread it.

    A lone letter "a" (a variable: "a squared") would be read as the article, so it
    becomes "eh"; "i-th" becomes "eyeth" (espeak spells "i-th" out as "i t h").
    """
    alias = _NTH_RE.sub(lambda m: _ESPEAK_LETTER_NAMES[m.group(1).lower()] + "th", alias)
    return _LETTER_WORD_RE.sub("eh", alias)


def script_language(text: str) -> str | None:
    """ "zh" when Han characters outnumber Latin letters, "en" when there are letters."""
    han = len(_HAN_RE.findall(text))
    latin = len(_LATIN_RE.findall(text))
    if not han and not latin:
        return None
    return "zh" if han >= latin / 3 else "en"


def language_hint(ssml: str) -> tuple[str, str | None]:
    """Split narrate's language hint off a CosyVoice document.

    Returns the document without ``xml:lang`` on ``<speak>`` (what goes on the wire) and
    the hint ("zh", "en") for the request's ``language_hints``, or None.
    """
    match = re.match(r'(<speak\b[^>]*?)\s+xml:lang="([^"]*)"', ssml)
    if not match:
        return ssml, None
    return ssml[: match.start(1)] + match.group(1) + ssml[match.end() :], match.group(2)


# --- validation -----------------------------------------------------------------------


def validate(ssml: str, dialect: Dialect | str, *, source: bool = False) -> list[Problem]:
    """Every problem of ``ssml`` for ``dialect``, with line and column (empty: valid).

    ``source=True`` checks a document a user wrote (it may also use markup narrate
    compiles for the engine, such as ``<phoneme>`` for espeak, ``<p>``/``<s>`` for
    CosyVoice); otherwise the document is checked as it would be sent.
    """
    chosen = dialect_for(dialect)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
    )
    try:
        root = etree.fromstring(ssml.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (1, 1)
        return [Problem(line, max(1, column), f"not well-formed XML: {exc.msg}")]
    specs = dict(chosen.elements)
    if source:
        specs.update(chosen.source_extras)
    positions = _tag_positions(ssml)
    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    problems: list[Problem] = []
    for k, element in enumerate(elements):
        line, column = positions[k] if k < len(positions) else (element.sourceline or 1, 1)
        problems.extend(
            Problem(line, column, message)
            for message in _element_problems(element, k == 0, specs, chosen, source)
        )
    problems.extend(chosen.document_problems(elements, positions))
    return problems


def _element_problems(
    element: etree._Element, is_root: bool, specs: dict[str, _Spec], dialect: Dialect, source: bool
) -> list[str]:
    name = etree.QName(element).localname
    namespace = etree.QName(element).namespace
    if namespace not in (None, "http://www.w3.org/2001/10/synthesis"):
        return [f"<{element.tag}> is not SSML"]
    if is_root and name != "speak":
        return [f"the document must be a <speak> element, not <{name}>"]
    if not is_root and name == "speak":
        return ["<speak> cannot be nested inside <speak>"]
    spec = specs.get(name)
    if spec is None:
        hint = dialect.alternatives.get(name, "remove it")
        return [f"<{name}> is not supported by {dialect.name}: {hint}"]
    problems = []
    for attribute in element.attrib:
        qualified = str(attribute)
        if (
            qualified not in spec.attributes
            and etree.QName(qualified).localname not in spec.attributes
        ):
            problems.append(f"<{name}> does not take the attribute {_attr_name(qualified)!r}")
    problems.extend(
        f"<{name}> needs the attribute {r!r}" for r in spec.required if element.get(r) is None
    )
    if spec.empty and (len(element) or (element.text or "").strip()):
        problems.append(f"<{name}> must be empty")
    if name in _TEXT_ONLY and len(element):
        problems.append(f"<{name}> may hold only text, not other elements")
    problems.extend(dialect.value_problems(element, name, source))
    return problems


def _attr_name(qualified: str) -> str:
    return "xml:lang" if qualified == XML_LANG else qualified


def ph_valid(alphabet: str, ph: str, shown: str) -> bool:
    """Whether ``ph`` is well-formed pinyin (one syllable per Han character) or CMU."""
    tokens = ph.split()
    if not tokens:
        return False
    if alphabet == "py":
        han = len(_HAN_RE.findall(shown))
        return all(_PINYIN_RE.match(t) for t in tokens) and (han == 0 or han == len(tokens))
    return all(_CMU_RE.match(t) for t in tokens)


_MARKUP_RE = re.compile(
    r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^>]*>|<([A-Za-z_][\w.:-]*)", re.S
)


def _tag_positions(text: str) -> list[tuple[int, int]]:
    """1-based (line, column) of every start tag, in document order."""
    positions: list[tuple[int, int]] = []
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for m in _MARKUP_RE.finditer(text):
        if m.group(1) is None:
            continue
        line = bisect.bisect_right(line_starts, m.start())
        positions.append((line, m.start() - line_starts[line - 1] + 1))
    return positions


def check(
    ssml: str, dialect: Dialect | str, *, source: bool = True, name: str = "the document"
) -> None:
    """Raise :class:`UnsupportedMarkupError` listing every problem, if there is any."""
    chosen = dialect_for(dialect)
    problems = validate(ssml, chosen, source=source)
    if problems:
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise UnsupportedMarkupError(
            f"{name} uses SSML that the {chosen.name} engine does not accept:\n  {shown}{more}",
            hint="change the markup at those places, or render with an engine that accepts it",
        )
