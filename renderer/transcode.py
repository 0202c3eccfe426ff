"""Re-encoding a finished audio file to MP3, for readers that play nothing else.

EPUB 3's core audio types are MP3 and AAC in MP4; a read-along EPUB of a job rendered as
WAV, FLAC, Opus or one m4b (whose chapters are kept as FLAC) carries each chapter as MP3.
The sample rate is kept, so the word track's times hold; the encoder's delay is written in
the LAME header, which decoders honour (as for every MP3 narrate writes).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from narrate.errors import AudioToolError
from narrate.files import atomic_path
from renderer.audio import ffmpeg_exe

#: speech, mono: transparent enough for a book read along on a phone
MP3_BITRATE_KBPS = 64


def to_mp3(source: Path, target: Path, bitrate_kbps: int = MP3_BITRATE_KBPS) -> None:
    """Encode ``source`` (anything ffmpeg reads) as a mono MP3 at ``target``, atomically."""
    with atomic_path(target) as tmp:
        command = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", str(source), "-vn", "-map_metadata", "-1", "-ac", "1",
            "-c:a", "libmp3lame", "-b:a", f"{bitrate_kbps}k", "-f", "mp3", str(tmp),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            errors = result.stderr.decode(errors="replace").strip()[-500:]
            raise AudioToolError(f"ffmpeg could not encode {source.name} as MP3: {errors}")
