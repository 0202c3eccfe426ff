"""Tags for delivered audio, written with mutagen: title, album (the book), artist (its
authors), track n/N, year, genre, cover, narrator.

* MP3 (and WAV): ID3v2.4 frames TIT2, TALB, TPE1, TRCK, TDRC, TCON, APIC (front cover),
  and COMM "Narrated by ...".
* Opus and FLAC: Vorbis comments (TITLE, ALBUM, ARTIST, TRACKNUMBER, TRACKTOTAL, DATE,
  GENRE, COMMENT) and the cover as a FLAC picture block (METADATA_BLOCK_PICTURE for Opus).
* M4B/M4A: ``©nam``, ``©alb``, ``©ART``, ``trkn``, ``©day``, ``©gen``, ``©cmt``, ``covr``,
  and ``stik`` = 2 (an audiobook, for Apple's players).

Tags are written to the delivered copy, never to the content-addressed file in storage.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TALB, TCON, TDRC, TIT2, TPE1, TRCK
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.wave import WAVE

GENRE = "Audiobook"
_YEAR_RE = re.compile(r"\b(\d{4})\b")


@dataclass(frozen=True)
class Tags:
    title: str
    album: str | None = None
    artists: tuple[str, ...] = ()
    track: int | None = None
    tracks: int | None = None
    date: str | None = None
    narrator: str | None = None
    cover: bytes | None = None
    cover_type: str = "image/jpeg"

    @property
    def year(self) -> str | None:
        found = _YEAR_RE.search(self.date or "")
        return found.group(1) if found else None

    @property
    def artist(self) -> str | None:
        return "; ".join(self.artists) or None

    @property
    def comment(self) -> str | None:
        return f"Narrated by {self.narrator}" if self.narrator else None


def write_tags(path: Path, tags: Tags) -> None:
    """Tag ``path`` by its extension (mp3, wav, opus, flac, m4b/m4a)."""
    suffix = path.suffix.lower()
    if suffix in (".mp3", ".wav"):
        _id3(path, tags, wave=suffix == ".wav")
    elif suffix in (".opus", ".flac"):
        _vorbis(path, tags, opus=suffix == ".opus")
    elif suffix in (".m4b", ".m4a", ".mp4"):
        _mp4(path, tags)


def _id3(path: Path, tags: Tags, *, wave: bool) -> None:
    audio = WAVE(path) if wave else None
    if audio is not None and audio.tags is None:
        audio.add_tags()
    frames = audio.tags if audio is not None else ID3()
    assert isinstance(frames, ID3)
    frames.add(TIT2(encoding=3, text=tags.title))
    if tags.album:
        frames.add(TALB(encoding=3, text=tags.album))
    if tags.artist:
        frames.add(TPE1(encoding=3, text=list(tags.artists)))
    if tags.track is not None:
        frames.add(TRCK(encoding=3, text=f"{tags.track}/{tags.tracks or tags.track}"))
    if tags.year:
        frames.add(TDRC(encoding=3, text=tags.year))
    frames.add(TCON(encoding=3, text=GENRE))
    if tags.comment:
        frames.add(COMM(encoding=3, lang="eng", desc="", text=tags.comment))
    if tags.cover:
        frames.add(APIC(encoding=3, mime=tags.cover_type, type=3, desc="Cover", data=tags.cover))
    if audio is not None:
        audio.save()
    else:
        frames.save(path, v2_version=4)


def _picture(tags: Tags) -> Picture:
    picture = Picture()
    picture.type = 3
    picture.mime = tags.cover_type
    picture.desc = "Cover"
    picture.data = tags.cover or b""
    return picture


def _vorbis(path: Path, tags: Tags, *, opus: bool) -> None:
    audio = OggOpus(path) if opus else FLAC(path)
    comments = {
        "title": tags.title,
        "album": tags.album,
        "artist": tags.artist,
        "tracknumber": str(tags.track) if tags.track is not None else None,
        "tracktotal": str(tags.tracks) if tags.tracks is not None else None,
        "date": tags.year,
        "genre": GENRE,
        "comment": tags.comment,
    }
    for key, value in comments.items():
        if value:
            audio[key] = [value]
    if tags.cover:
        if opus:
            audio["metadata_block_picture"] = [
                base64.b64encode(_picture(tags).write()).decode("ascii")
            ]
        else:
            assert isinstance(audio, FLAC)
            audio.clear_pictures()
            audio.add_picture(_picture(tags))
    audio.save()


def _mp4(path: Path, tags: Tags) -> None:
    audio = MP4(path)
    values: dict[str, object] = {
        "\xa9nam": [tags.title],
        "\xa9alb": [tags.album] if tags.album else None,
        "\xa9ART": [tags.artist] if tags.artist else None,
        "\xa9day": [tags.year] if tags.year else None,
        "\xa9gen": [GENRE],
        "\xa9cmt": [tags.comment] if tags.comment else None,
        "trkn": [(tags.track, tags.tracks or tags.track)] if tags.track is not None else None,
        "stik": [2],
    }
    for key, value in values.items():
        if value is not None:
            audio[key] = value
    if tags.cover:
        kind = MP4Cover.FORMAT_PNG if tags.cover_type == "image/png" else MP4Cover.FORMAT_JPEG
        audio["covr"] = [MP4Cover(tags.cover, imageformat=kind)]
    audio.save()
