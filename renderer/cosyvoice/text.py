"""From a segment's SSML to the text messages of one task (pure).

Two ways to send a segment (option ``ssml``):

* **Plain text** (``ssml=off``, and ``auto`` when the SSML holds nothing but
  ``<break>``): the text content is fed sentence by sentence, one ``continue-task``
  each (reference §2.1: the service cuts sentences itself and synthesizes each complete
  one at once), and the ``<break>`` pauses are inserted by narrate into the PCM at the
  matching sentence boundary. The text sent is the text content without its trailing
  whitespace, so the bill is exactly :func:`billed_chars` of it.
* **SSML** (``ssml=on``, and ``auto`` when the document uses ``<sub>``, ``<phoneme>``,
  ``<say-as>``, ``<soundEvent>`` or ``<speak>`` attributes): the whole document in
  **exactly one** ``continue-task`` with ``enable_ssml`` (§3, §6); the service places
  the breaks. Tags are not billed (§5.2).

Long sentences: the service is known to truncate a sentence's audio at about 33.44 s
(§11). A sentence whose estimated audio exceeds :data:`SAFE_SENTENCE_MS` is cut at
clause boundaries (then spaces) and each part but the last is followed by a ``flush``
(§2.2), which makes the service synthesize what it holds. Audio that still comes back
short is caught afterwards (:mod:`renderer.cosyvoice.result`).

Limits (§5.1): at most 20,000 billed characters per message and 200,000 per task.

Language hint: narrate's ``cosyvoice`` dialect may put ``xml:lang`` ("zh", "en") on
``<speak>``. It is not part of the service's SSML (§6): it is removed before sending and
becomes the request's ``language_hints`` unless ``--option language`` says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from renderer.cosyvoice.billing import PER_MESSAGE_LIMIT, PER_TASK_LIMIT, billed_chars, is_han
from renderer.cosyvoice.errors import CosyVoiceUsageError
from ssml.dialects import language_hint

#: the service's per-sentence audio cap observed in the field (§11): 802,560 samples at 24 kHz
SENTENCE_CAP_MS = 33_440
#: sentences predicted longer than this are cut and flushed
SAFE_SENTENCE_MS = 25_000
#: rough speaking speed at rate 1.0, for predictions and the truncation floor
MS_PER_HAN = 230
MS_PER_LETTER = 62

_CLOSERS = "\"')]}’”»」』）"
#: where the service (and the simulator) ends a sentence: CJK and ASCII terminators,
#: a full stop followed by a space, a newline
SENTENCE_END = re.compile(
    rf"(?:[。！？!?；;…]+[{re.escape(_CLOSERS)}]*|\.+[{re.escape(_CLOSERS)}]*(?=\s|$)|\n)\s*"
)
#: ``<speak>`` attributes that change the sound (§6); only SSML mode honours them
_SPEAK_ATTRIBUTES = frozenset(
    {"voice", "rate", "pitch", "volume", "effect", "effectValue", "bgm", "backgroundMusicVolume"}
)
_BREAK_TIME = re.compile(r"^\s*(\d+)\s*(ms|s)\s*$")


@dataclass(frozen=True)
class Message:
    """One ``continue-task`` text; ``flush_after`` sends a flush right after it."""

    text: str
    start: int  # offset of the text in the segment text (plain mode)
    flush_after: bool = False


#: a ``<sub>``: (start, end) in the said text -> (start, end) in the display text
Substitution = tuple[int, int, int, int]


@dataclass(frozen=True)
class TaskPlan:
    text: str  # what the service says: the SSML's text with ``<sub>`` aliases expanded
    ssml_mode: bool
    messages: tuple[Message, ...]
    #: pauses to insert locally (plain mode): (offset in ``text``, milliseconds)
    breaks: tuple[tuple[int, int], ...]
    billed: int
    #: the document's language hint (``xml:lang`` on ``<speak>``), if any
    language: str | None = None
    #: ``<sub>`` positions, to map word marks back onto the segment (display) text
    subs: tuple[Substitution, ...] = ()


def split_language_hint(ssml: str) -> tuple[str, str | None]:
    """The document without ``xml:lang`` on ``<speak>``, and that language (or None)."""
    bare, hint = language_hint(ssml)
    return bare, (hint.split("-")[0].lower() or None) if hint else None


@dataclass(frozen=True)
class ParsedSsml:
    text: str
    breaks: tuple[tuple[int, int], ...]
    rich: bool  # uses markup that only the service's SSML mode can honour


def substitutions(ssml: str) -> tuple[Substitution, ...]:
    """Where each ``<sub alias>`` sits in the said text and in the display text."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(ssml.encode(), parser)
    said = shown = 0
    found: list[Substitution] = []

    def walk(element: etree._Element) -> None:
        nonlocal said, shown
        if element.text:
            said, shown = said + len(element.text), shown + len(element.text)
        for child in element:
            is_sub = isinstance(child.tag, str) and etree.QName(child).localname == "sub"
            if is_sub and child.get("alias") is not None:
                display = "".join(child.itertext())
                alias = child.get("alias") or ""
                found.append((said, said + len(alias), shown, shown + len(display)))
                said, shown = said + len(alias), shown + len(display)
            elif isinstance(child.tag, str):
                walk(child)
            if child.tail:
                said, shown = said + len(child.tail), shown + len(child.tail)

    walk(root)
    return tuple(found)


def to_display(subs: Sequence[Substitution], start: int, end: int) -> tuple[int, int]:
    """A span of the said text as a span of the display text (an alias -> its ``<sub>``)."""

    def point(position: int, *, is_end: bool) -> int:
        shift = 0
        for said_start, said_end, shown_start, shown_end in subs:
            if position < said_start or (is_end and position == said_start):
                break
            if position < said_end or (is_end and position == said_end):
                return shown_end if is_end else shown_start
            shift = shown_end - said_end
        return position + shift

    begin = point(start, is_end=False)
    return begin, max(begin, point(end, is_end=True))


def break_ms(time: str | None) -> int:
    """A ``<break time>`` in ms (§6: no attribute = 1 s; Ns 1-10; Nms 50-10000)."""
    if time is None:
        return 1000
    match = _BREAK_TIME.match(time)
    if match is None:
        return 1000
    value = int(match.group(1)) * (1000 if match.group(2) == "s" else 1)
    return max(0, min(value, 10_000))


def parse_ssml(ssml: str, *, aliases: bool = False) -> ParsedSsml:
    """Text content, break positions and whether SSML mode is needed.

    With ``aliases`` a ``<sub>`` contributes its ``alias`` (what the service says)
    instead of its text (what captions show).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(ssml.encode(), parser)
    parts: list[str] = []
    breaks: list[tuple[int, int]] = []
    rich = any(etree.QName(name).localname in _SPEAK_ATTRIBUTES for name in root.attrib)

    def walk(element: etree._Element) -> None:
        nonlocal rich
        if element.text:
            parts.append(element.text)
        for child in element:
            if not isinstance(child.tag, str):  # comments, processing instructions
                if child.tail:
                    parts.append(child.tail)
                continue
            tag = etree.QName(child).localname
            if tag == "break":
                breaks.append((sum(map(len, parts)), break_ms(child.get("time"))))
            elif tag == "sub" and child.get("alias") is not None:
                # an alias needs no SSML mode: narrate can send the said text itself
                if aliases:
                    parts.append(child.get("alias") or "")
                else:
                    walk(child)
            else:
                rich = True  # <sub>, <phoneme>, <say-as>, <soundEvent>, ...
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(root)
    return ParsedSsml("".join(parts), tuple(breaks), rich)


def expected_ms(text: str, rate: float = 1.0) -> int:
    """A rough prediction of how long ``text`` takes to say (letters, digits, Han)."""
    han = sum(1 for ch in text if is_han(ch))
    other = sum(1 for ch in text if ch.isalnum()) - han
    return int((han * MS_PER_HAN + other * MS_PER_LETTER) / max(rate, 0.01))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The service's sentence cut: spans that cover ``text`` (trailing spaces included)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in SENTENCE_END.finditer(text):
        if match.end() > start:
            spans.append((start, match.end()))
            start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return spans


#: LaTeX formulas as CosyVoice reads them (§7): $...$, $$...$$, \\(...\\), \\[...\\]
FORMULA = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$|\\\(.+?\\\)|\\\[.+?\\\]", re.DOTALL)
_CUT_AFTER = re.compile(r"[,;:，；：、—]\s*|\s+")


def without_formulas(text: str) -> str:
    """``text`` with its LaTeX formulas taken out (the service may skip them, §7)."""
    return FORMULA.sub(" ", text)


def _cut_long(text: str, start: int, end: int, rate: float) -> list[tuple[int, int]]:
    """Cut one sentence into parts short enough to stay under the truncation cap.

    Cuts fall after clause punctuation where possible, else after spaces, and never
    inside a formula; each part keeps the spaces that follow it.
    """
    predicted = expected_ms(text[start:end], rate)
    if predicted <= SAFE_SENTENCE_MS:
        return [(start, end)]
    max_chars = max(20, (end - start) * SAFE_SENTENCE_MS // predicted)
    inside = [(m.start() + start, m.end() + start) for m in FORMULA.finditer(text[start:end])]
    cuts = [
        (m.end() + start, not m.group().isspace())
        for m in _CUT_AFTER.finditer(text[start:end])
        if start < m.end() + start < end and not any(a < m.start() + start < b for a, b in inside)
    ]
    parts: list[tuple[int, int]] = []
    position = start
    while end - position > max_chars:
        fits = [(at, clause) for at, clause in cuts if position < at <= position + max_chars]
        clauses = [at for at, clause in fits if clause and at - position > max_chars // 3]
        if clauses:
            cut = clauses[-1]
        elif fits:
            cut = fits[-1][0]
        else:
            later = [at for at, _clause in cuts if at > position]
            hard = position + max_chars  # text with no spaces or punctuation (Chinese)
            if not any(a < hard < b for a, b in inside):
                cut = hard
            elif later:
                cut = later[0]
            else:
                break
        parts.append((position, cut))
        position = cut
    parts.append((position, end))
    return parts


def plan_task(ssml: str, *, ssml_setting: str = "auto", rate: float = 1.0) -> TaskPlan:
    """The messages of the task that speaks ``ssml`` (see the module docstring)."""
    ssml, language = split_language_hint(ssml)
    shown = parse_ssml(ssml).text
    parsed = parse_ssml(ssml, aliases=True)  # what the service says: aliases expanded
    ssml_mode = ssml_setting == "on" or (ssml_setting == "auto" and parsed.rich)
    if ssml_mode:
        billed = billed_chars(shown)
        messages: tuple[Message, ...] = (Message(ssml, 0),)
        breaks: tuple[tuple[int, int], ...] = ()
    else:
        sent = parsed.text.rstrip()
        billed = billed_chars(sent)
        pieces: list[Message] = []
        for start, end in sentence_spans(sent):
            parts = _cut_long(sent, start, end, rate)
            for i, (a, b) in enumerate(parts):
                pieces.append(Message(sent[a:b], a, flush_after=i + 1 < len(parts)))
        messages = tuple(pieces)
        breaks = tuple((pos, ms) for pos, ms in parsed.breaks if 0 < pos < len(sent))
    if not parsed.text.strip():
        raise CosyVoiceUsageError(
            "the segment has no text to speak", hint="the service refuses empty text"
        )
    for message in messages:
        count = billed_chars(message.text) if not ssml_mode else billed
        if count > PER_MESSAGE_LIMIT:
            raise CosyVoiceUsageError(
                f"one message would carry {count} billed characters "
                f"(the service takes at most {PER_MESSAGE_LIMIT})",
                hint="lower NARRATE_COSYVOICE_SEGMENT_CHARS or use --option ssml=off",
            )
    if billed > PER_TASK_LIMIT:
        raise CosyVoiceUsageError(
            f"the segment has {billed} billed characters (at most {PER_TASK_LIMIT} per task)",
            hint="lower NARRATE_COSYVOICE_SEGMENT_CHARS",
        )
    return TaskPlan(parsed.text, ssml_mode, messages, breaks, billed, language, substitutions(ssml))
