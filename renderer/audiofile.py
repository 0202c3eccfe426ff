"""What an audio file is, from its headers: codec, sample rate, channels, duration, bit rate
and whether the bit rate is constant.

mutagen reads the container; for MP3 the bit rate of every frame is read too (a VBR file
with a wrong or missing LAME header still shows as VBR), since stores refuse a variable
bit rate where they ask for CBR. Nothing here decodes audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.mp3 import MP3

from narrate.errors import InputError

# MPEG audio frame headers: bit rates (kbit/s) by version and layer, sample rates by version
_BITRATES_KBPS = {
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES_KBPS[(2, 3)] = _BITRATES_KBPS[(2, 2)]
_SAMPLE_RATES_HZ = {1: (44100, 48000, 32000), 2: (22050, 24000, 16000), 25: (11025, 12000, 8000)}
_MAX_FRAMES = 2_000_000  # about 14 hours of MP3: a bound on the scan, whatever the file


@dataclass(frozen=True)
class AudioFacts:
    codec: str  # "mp3", "aac", "opus", "vorbis", "flac", "wav", ...
    sample_rate_hz: int
    channels: int
    duration_ms: int
    #: average bit rate in kbit/s (None for PCM)
    bitrate_kbps: int | None
    #: every frame at the same bit rate (None: not known for this codec)
    constant_bitrate: bool | None


def audio_facts(path: Path) -> AudioFacts:
    """The facts of an audio file; :class:`~narrate.errors.InputError` if it is not one."""
    try:
        found = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as exc:
        raise _not_audio(path, str(exc)) from None
    if found is None or found.info is None:
        raise _not_audio(path, "its format is not one narrate reads")
    info = found.info
    codec = _codec(found)
    bitrate = int(getattr(info, "bitrate", 0) or 0) // 1000 or None
    constant: bool | None = None
    if isinstance(found, MP3):
        rates = mp3_frame_bitrates(path)
        constant = len(rates) == 1
        bitrate = max(rates) if len(rates) == 1 else bitrate
    elif codec == "wav":
        bitrate, constant = None, True
    return AudioFacts(
        codec=codec,
        # Opus always decodes at 48 kHz (its header only keeps the input's rate as a hint)
        sample_rate_hz=48000 if codec == "opus" else int(getattr(info, "sample_rate", 0) or 0),
        channels=int(getattr(info, "channels", 0) or 0),
        duration_ms=round(float(getattr(info, "length", 0.0) or 0.0) * 1000),
        bitrate_kbps=bitrate,
        constant_bitrate=constant,
    )


def _codec(found: mutagen.FileType) -> str:
    name = type(found).__name__.lower()
    if name == "mp3":
        return "mp3"
    if name in ("mp4", "easymp4"):
        return str(getattr(found.info, "codec", "aac")).split(".")[0].replace("mp4a", "aac")
    if name.startswith("ogg"):
        return name.removeprefix("ogg") or "ogg"
    if name in ("wave", "wav"):
        return "wav"
    return name


def _not_audio(path: Path, why: str) -> InputError:
    return InputError(
        f"{path.name} cannot be read as audio: {why}",
        hint="give an MP3, M4A/M4B, Opus, FLAC or WAV file",
    )


def mp3_frame_bitrates(path: Path) -> set[int]:
    """The bit rates (kbit/s) of the MPEG audio frames of ``path``, the LAME/Xing header
    frame left out (it carries no audio). Reads the file in blocks, frame header by frame
    header (memory: one block)."""
    rates: set[int] = set()
    with path.open("rb") as stream:
        head = stream.read(10)
        at = _after_id3v2(head)
        stream.seek(at)
        buffer = stream.read(_BLOCK)
        base = at  # the file offset of buffer[0]
        first = True
        for _ in range(_MAX_FRAMES):
            offset = at - base
            if offset + 200 > len(buffer):  # refill from this frame on
                stream.seek(at)
                buffer, base, offset = stream.read(_BLOCK), at, 0
            head = buffer[offset : offset + 4]
            if len(head) < 4 or head[:3] == b"TAG":  # the end, or an ID3v1 tag there
                break
            header = _frame_header(head)
            if header is None:
                at += 1  # resynchronise on the next byte
                continue
            length, kbps = header
            if not (first and _is_info_frame(buffer[offset : offset + min(length, 200)])):
                rates.add(kbps)
            first = False
            at += length
    return rates


_BLOCK = 1 << 20


def _after_id3v2(head: bytes) -> int:
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _frame_header(head: bytes) -> tuple[int, int] | None:
    """``(frame length, kbit/s)`` of a valid MPEG audio frame header, or None."""
    b1, b2 = head[1], head[2]
    if head[0] != 0xFF or b1 & 0xE0 != 0xE0:
        return None
    version = {3: 1, 2: 2, 0: 25}.get((b1 >> 3) & 0x3)
    layer = {3: 1, 2: 2, 1: 3}.get((b1 >> 1) & 0x3)
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 0x3
    if version is None or layer is None or bitrate_index in (0, 15) or rate_index == 3:
        return None
    kbps = _BITRATES_KBPS[(1 if version == 1 else 2, layer)][bitrate_index]
    rate = _SAMPLE_RATES_HZ[version][rate_index]
    padding = (b2 >> 1) & 0x1
    if layer == 1:
        length = (12 * kbps * 1000 // rate + padding) * 4
    elif layer == 3 and version != 1:
        length = 72 * kbps * 1000 // rate + padding
    else:
        length = 144 * kbps * 1000 // rate + padding
    return (length, kbps) if length > 4 else None


def _is_info_frame(start: bytes) -> bool:
    """The first frame of a LAME/Xing (or VBRI) encoded file holds a header, no audio."""
    return b"Xing" in start or b"Info" in start or b"VBRI" in start
