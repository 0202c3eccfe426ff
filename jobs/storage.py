"""Content-addressed file storage for segment audio, segment word timings and chapter audio.

Layout under the storage root (``NARRATE_STORAGE_DIR``)::

    segments/ab/<content hash>.wav    mono 16-bit PCM as the engine produced it
    segments/ab/<content hash>.json   the segment's timed words (segment timeline)
    chapters/<chapter hash>.<ext>     a stitched chapter
    chapters/<chapter hash>.master.json  its mastering report (mastered chapters)

Every file is written to a temporary name and renamed, so a crash never leaves a
half-written file under a final name; the JSON is written after the WAV and marks the
segment as complete. Workers on several machines must share this directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from narrate.files import write_bytes_atomic
from renderer.audio import write_wav_atomic
from renderer.timing import TimedWord


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def segment_wav(self, content_hash: str) -> Path:
        return self.root / "segments" / content_hash[:2] / f"{content_hash}.wav"

    def segment_words_path(self, content_hash: str) -> Path:
        return self.segment_wav(content_hash).with_suffix(".json")

    def has_segment(self, content_hash: str) -> bool:
        return (
            self.segment_words_path(content_hash).is_file()
            and self.segment_wav(content_hash).is_file()
        )

    def save_segment(
        self, content_hash: str, pcm: bytes, sample_rate_hz: int, words: Sequence[TimedWord]
    ) -> None:
        write_wav_atomic(self.segment_wav(content_hash), pcm, sample_rate_hz)
        payload = [[w.text, w.char_start, w.char_end, w.start_ms, w.end_ms] for w in words]
        write_bytes_atomic(self.segment_words_path(content_hash), json.dumps(payload).encode())

    def load_segment_words(self, content_hash: str) -> list[TimedWord]:
        rows = json.loads(self.segment_words_path(content_hash).read_bytes())
        return [TimedWord(str(t), int(a), int(b), int(s), int(e)) for t, a, b, s, e in rows]

    def chapter_audio(self, chapter_hash: str, extension: str) -> Path:
        return self.root / "chapters" / f"{chapter_hash}.{extension}"

    def chapter_report(self, chapter_hash: str) -> Path:
        """The mastering report of a mastered chapter file (measures, rules, curve)."""
        return self.root / "chapters" / f"{chapter_hash}.master.json"

    def key(self, path: Path) -> str:
        """``path`` relative to the storage root, as stored in the database."""
        return path.relative_to(self.root).as_posix()

    def path(self, key: str) -> Path:
        return self.root / key
