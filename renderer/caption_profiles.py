"""Caption profiles: the subtitle rules captions are cut to (``--caption-profile``) and that
``narrate captions --check`` applies (../shared/reference/delivery-standards.md, section 6).

One table, :data:`CAPTION_PROFILES`. The sources of each number:

``standard`` (adult viewers; the Netflix English template [NFX1]):

* ``max_line_chars`` 42 and ``max_lines`` 2 [NFX1] (BBC also recommends 2 lines [BBC1]);
* ``max_chars_per_s`` 17 (adults: 17 characters a second, about 200 words a minute) [NFX1];
* ``min_duration_ms`` 833: 5/6 s, 20 frames at 24 fps [NFX1];
* ``max_duration_ms`` 7000: 7 s [NFX1];
* ``min_gap_ms`` 83: at least 2 frames between cues [NFX1], 2/24 s to the millisecond;
* ``max_linger_ms`` 1500: a cue never stays more than 1.5 s after its speech [BBC3]
  (captions are also never shown before the speech: narrate starts every cue at its
  first word; a file alone cannot say when the speech starts, so ``--check`` cannot
  test that).

``children``: as ``standard`` but 13 characters a second (children: 13 cps, about 160
words a minute) [NFX1].

``broadcast`` (UK television, BBC subtitle guidelines and Ofcom):

* ``max_line_chars`` 37: a line at most 68% of the width of a 16:9 frame [BBC1], which the
  BBC guidelines equate with about 37 characters;
* ``max_lines`` 2 (3 only if nothing important is covered, which narrate cannot know)
  [BBC1];
* ``max_chars_per_s`` 16: 160-180 words a minute (Ofcom/BBC) [BBC1][BBC2] is about 14-16
  characters a second at 5.4 characters a word including the space (the reference's
  derivation); the upper end;
* ``min_gap_ms`` 80: 2 frames [NFX1] at the 25 fps of UK television;
* ``max_linger_ms`` 1500: do not hang on screen more than 1.5 s after speech [BBC3];
* ``min_duration_ms`` 833 and ``max_duration_ms`` 7000: the reference has no BBC or Ofcom
  figure for these, so they are the standard's [NFX1].

Chinese and Japanese captions (text that is mostly CJK: :meth:`CaptionProfile.for_text`)
get narrower lines and a slower reading speed in every profile: ``cjk_line_chars`` 16
(Netflix's Simplified Chinese template: "16 characters per line" [NFX-ZH]) and
``cjk_chars_per_s`` 9, 7 for children (the reading-speed limits of the same template as we
recall them; the reference does not hold them: verify before promising them).

Reading speed counts every character a viewer reads, spaces and punctuation included,
over the cue's time on screen (end minus start); the line break between two lines is not
a character (it stands where a space stood). A CJK character counts one.

[NFX-ZH] https://partnerhelp.netflixstudios.com/hc/en-us/articles/215986007
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from narrate.errors import UsageError


@dataclass(frozen=True)
class CaptionProfile:
    """The limits of one caption profile (see the module docstring for their sources)."""

    name: str
    summary: str
    max_line_chars: int = 42
    max_lines: int = 2
    max_chars_per_s: float = 17.0
    min_duration_ms: int = 833
    max_duration_ms: int = 7000
    min_gap_ms: int = 83
    #: how long a cue may stay on screen after its last word ends
    max_linger_ms: int = 1500
    #: the line width and reading speed of Chinese and Japanese text (:meth:`for_text`)
    cjk_line_chars: int = 16
    cjk_chars_per_s: float = 9.0

    def __post_init__(self) -> None:
        if min(self.max_line_chars, self.max_lines, self.cjk_line_chars) < 1:
            raise ValueError("line limits must be positive")
        if self.max_chars_per_s <= 0 or self.cjk_chars_per_s <= 0:
            raise ValueError("reading speeds must be positive")
        if not 0 <= self.min_duration_ms <= self.max_duration_ms or self.max_duration_ms < 1:
            raise ValueError("need 0 <= min_duration_ms <= max_duration_ms and max >= 1")
        if self.min_gap_ms < 0 or self.max_linger_ms < 0:
            raise ValueError("min_gap_ms and max_linger_ms must not be negative")

    def for_text(self, text: str) -> CaptionProfile:
        """This profile as it applies to ``text``: with the CJK line width and reading
        speed when the text is mostly Chinese or Japanese (:func:`mostly_cjk`)."""
        if not mostly_cjk(text):
            return self
        return replace(
            self,
            max_line_chars=min(self.max_line_chars, self.cjk_line_chars),
            max_chars_per_s=min(self.max_chars_per_s, self.cjk_chars_per_s),
            summary=f"{self.summary}; Chinese/Japanese: {self.cjk_line_chars} characters a "
            f"line, {self.cjk_chars_per_s:g} characters/s",
        )


def is_cjk(char: str) -> bool:
    """Han, kana, bopomofo, CJK punctuation and full-width forms (not Hangul)."""
    code = ord(char)
    return (
        0x2E80 <= code <= 0x2FDF  # radicals
        or 0x3000 <= code <= 0x312F  # CJK punctuation, kana, bopomofo
        or 0x31A0 <= code <= 0x31FF  # bopomofo ext, strokes, katakana ext
        or 0x3400 <= code <= 0x4DBF  # ext A
        or 0x4E00 <= code <= 0x9FFF  # unified ideographs
        or 0xF900 <= code <= 0xFAFF  # compatibility ideographs
        or 0xFE30 <= code <= 0xFE4F  # compatibility forms
        or 0xFF00 <= code <= 0xFFEF  # half-width and full-width forms
        or 0x20000 <= code <= 0x3FFFF  # ext B and later
    )


def mostly_cjk(text: str) -> bool:
    """Whether most letters of ``text`` are CJK characters."""
    letters = [ch for ch in text if ch.isalnum()]
    return bool(letters) and 2 * sum(1 for ch in letters if is_cjk(ch)) > len(letters)


STANDARD = CaptionProfile(
    "standard",
    "adults (Netflix English): 42 characters x 2 lines, 17 characters/s, 5/6-7 s a cue",
)
CHILDREN = CaptionProfile(
    "children",
    "children (Netflix): 42 characters x 2 lines, 13 characters/s, 5/6-7 s a cue",
    max_chars_per_s=13.0,
    cjk_chars_per_s=7.0,
)
BROADCAST = CaptionProfile(
    "broadcast",
    "UK television (BBC/Ofcom): 37 characters x 2 lines, 16 characters/s, 5/6-7 s a cue",
    max_line_chars=37,
    max_chars_per_s=16.0,
    min_gap_ms=80,
)

CAPTION_PROFILES: dict[str, CaptionProfile] = {p.name: p for p in (STANDARD, CHILDREN, BROADCAST)}
CAPTION_PROFILE_NAMES = tuple(CAPTION_PROFILES)
#: what a job without a caption profile of its own (older jobs) is cut to
DEFAULT_CAPTION_PROFILE = STANDARD.name


def caption_profile(name: str) -> CaptionProfile:
    """The profile called ``name``; a :class:`UsageError` naming the choices otherwise."""
    try:
        return CAPTION_PROFILES[name]
    except KeyError:
        raise UsageError(
            f"unknown caption profile {name!r}",
            hint=f"choose one of {', '.join(CAPTION_PROFILE_NAMES)}",
        ) from None
