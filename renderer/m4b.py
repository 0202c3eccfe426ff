"""One audiobook file (m4b: AAC in MP4) for a whole book, with a chapter mark at each
chapter's start.

The chapters come as lossless files (FLAC); ffmpeg's concat demuxer reads them in order
and encodes the book in one pass, so a chapter's start is the exact sample count of the
chapters before it (no encoder delay or padding between chapters; one AAC priming delay
at the very start, which the MP4 edit list hides). The marks go in through an
FFMETADATA file, and ffmpeg's MP4 muxer writes them twice: as a QuickTime chapter track
(what Apple's players read) and as a Nero ``chpl`` atom (what mutagen and most other
players read).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mutagen.flac import FLAC

from narrate.errors import AudioToolError
from narrate.files import atomic_path
from renderer.audio import ffmpeg_exe
from renderer.stitch import AudioFormat


@dataclass(frozen=True)
class BookChapter:
    title: str
    audio: Path  # a lossless FLAC file


@dataclass(frozen=True)
class Mark:
    title: str
    start_ms: int
    end_ms: int


def chapter_marks(titles: Sequence[str], sample_counts: Sequence[int], rate: int) -> list[Mark]:
    """Each chapter's start and end on the book's timeline (pure), from sample counts."""
    marks: list[Mark] = []
    position = 0
    for title, samples in zip(titles, sample_counts, strict=True):
        start = position * 1000 // rate
        position += samples
        marks.append(Mark(title, start, position * 1000 // rate))
    return marks


def _escape(value: str) -> str:
    """FFMETADATA escapes ``= ; # \\`` and newlines with a backslash."""
    out = []
    for char in " ".join(value.split()):
        if char in "=;#\\":
            out.append("\\")
        out.append(char)
    return "".join(out)


def ffmetadata(title: str | None, artist: str | None, marks: Sequence[Mark]) -> str:
    """An FFMETADATA1 document with the book's title and artist and its chapter marks."""
    lines = [";FFMETADATA1"]
    if title:
        lines.append(f"title={_escape(title)}")
    if artist:
        lines.append(f"artist={_escape(artist)}")
    for mark in marks:
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={mark.start_ms}",
            f"END={mark.end_ms}",
            f"title={_escape(mark.title)}",
        ]
    return "\n".join(lines) + "\n"


def assemble(
    chapters: Sequence[BookChapter],
    out_path: Path,
    fmt: AudioFormat,
    *,
    title: str | None = None,
    artist: str | None = None,
    filters: Sequence[str] = (),
) -> list[Mark]:
    """Encode ``chapters`` into one m4b at ``out_path`` (atomically), through the ffmpeg
    audio ``filters`` if any (a mastering correction); returns the marks."""
    rate = sample_rate_of(chapters)
    infos = [FLAC(chapter.audio).info for chapter in chapters]
    marks = chapter_marks([c.title for c in chapters], [i.total_samples for i in infos], rate)
    with atomic_path(out_path) as tmp:
        listing = tmp.with_suffix(".txt")
        metadata = tmp.with_suffix(".meta")
        try:
            listing.write_text(
                "".join(f"file '{_quoted(c.audio.resolve())}'\n" for c in chapters), "utf-8"
            )
            metadata.write_text(ffmetadata(title, artist, marks), "utf-8")
            command = [
                ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
                "-f", "concat", "-safe", "0", "-i", str(listing), "-i", str(metadata),
                "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
                *(["-af", ",".join(filters)] if filters else []),
                *fmt.ffmpeg_output_args(rate), str(tmp),
            ]  # fmt: skip
            result = subprocess.run(command, capture_output=True, check=False)
        finally:
            listing.unlink(missing_ok=True)
            metadata.unlink(missing_ok=True)
        if result.returncode != 0:
            errors = result.stderr.decode(errors="replace").strip()[-500:]
            raise AudioToolError(f"ffmpeg could not make the m4b: {errors}")
    return marks


def sample_rate_of(chapters: Sequence[BookChapter]) -> int:
    """The one sample rate of the chapters' audio (the book's), or AudioToolError."""
    if not chapters:
        raise AudioToolError("a book needs at least one chapter")
    rates: set[int] = {int(FLAC(chapter.audio).info.sample_rate) for chapter in chapters}
    if len(rates) != 1:
        raise AudioToolError(f"the chapters have different sample rates ({sorted(rates)} Hz)")
    return rates.pop()


def _quoted(path: Path) -> str:
    """A path inside single quotes of an ffmpeg concat list (``'`` as ``'\\''``)."""
    return str(path).replace("'", "'\\''")
