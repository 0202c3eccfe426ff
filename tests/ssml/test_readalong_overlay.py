"""SMIL overlays: clip times are the word track's, at word and at sentence level."""

from __future__ import annotations

import io

from lxml import etree

from ssml.readalong.overlay import AudioPart, AudioTrack, Group, Par, write_smil
from ssml.readalong.words import parse_clock

SMIL = "{http://www.w3.org/ns/SMIL}"
EPUB = "{http://www.idpf.org/2007/ops}"
ONE_FILE = AudioTrack((AudioPart("../audio/01.mp3", 0, 60_000),))


def smil(groups: list[Group], level: str, audio: AudioTrack = ONE_FILE) -> tuple[object, bytes]:
    out = io.BytesIO()
    stats = write_smil(out, groups, text_href="../text/01.xhtml", audio=audio, level=level)
    return stats, out.getvalue()


def pars(data: bytes) -> list[tuple[str, str, int, int]]:
    root = etree.fromstring(data)
    found = []
    for par in root.iter(f"{SMIL}par"):
        text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
        found.append(
            (
                text.get("src"),
                audio.get("src"),
                parse_clock(audio.get("clipBegin")),
                parse_clock(audio.get("clipEnd")),
            )
        )
    return found


GROUPS = [
    Group("s0", 0, 900, (Par("w0", 0, 400), Par("w1", 450, 900))),
    Group("s1", 1200, 1900, (Par("w2", 1200, 1500), Par("w3", 1500, 1900))),
]


def test_word_level_pars_carry_each_words_times_inside_sentence_seqs() -> None:
    stats, data = smil(GROUPS, "word")
    assert pars(data) == [
        ("../text/01.xhtml#w0", "../audio/01.mp3", 0, 400),
        ("../text/01.xhtml#w1", "../audio/01.mp3", 450, 900),
        ("../text/01.xhtml#w2", "../audio/01.mp3", 1200, 1500),
        ("../text/01.xhtml#w3", "../audio/01.mp3", 1500, 1900),
    ]
    root = etree.fromstring(data)
    seqs = list(root.iter(f"{SMIL}seq"))
    assert [s.get(f"{EPUB}textref") for s in seqs] == ["../text/01.xhtml#s0", "../text/01.xhtml#s1"]
    assert root.get("version") == "3.0"
    assert stats.pars == 4  # type: ignore[attr-defined]
    assert stats.clip_ms == 400 + 450 + 300 + 400  # type: ignore[attr-defined]


def test_sentence_level_pars_run_from_first_start_to_last_end() -> None:
    stats, data = smil(GROUPS, "sentence")
    assert [(p[0], p[2], p[3]) for p in pars(data)] == [
        ("../text/01.xhtml#s0", 0, 900),
        ("../text/01.xhtml#s1", 1200, 1900),
    ]
    assert not list(etree.fromstring(data).iter(f"{SMIL}seq"))
    assert stats.clip_ms == 900 + 700  # type: ignore[attr-defined]


def test_a_sentence_known_only_as_a_whole_is_one_par_at_word_level() -> None:
    _stats, data = smil([Group("s0", 0, 700)], "word")  # a heading: "Chapter 1" for "I"
    assert [(p[0], p[2], p[3]) for p in pars(data)] == [("../text/01.xhtml#s0", 0, 700)]


def test_nothing_is_written_for_what_has_no_element_or_no_time() -> None:
    groups = [
        Group(None, 0, 500),  # no word of it was found in the document
        Group("s1", 600, 600),  # no voiced word: no time
        Group("s2", 700, 900, (Par("w5", 700, 700), Par("w6", 700, 900))),
    ]
    stats, data = smil(groups, "word")
    assert [p[0] for p in pars(data)] == ["../text/01.xhtml#w6"]
    assert stats.pars == 1  # type: ignore[attr-defined]
    assert smil(groups[:2], "word")[0].pars == 0  # type: ignore[attr-defined]


def test_a_chapter_in_several_files_gets_clips_relative_to_each_file() -> None:
    audio = AudioTrack((AudioPart("a-1.mp3", 0, 1000), AudioPart("a-2.mp3", 1000, 1000)))
    groups = [Group("s0", 0, 1800, (Par("w0", 100, 900), Par("w1", 1100, 1800)))]
    _stats, data = smil(groups, "word", audio)
    assert [(p[1], p[2], p[3]) for p in pars(data)] == [
        ("a-1.mp3", 100, 900),
        ("a-2.mp3", 100, 800),
    ]
    assert audio.clip(900, 1500) == ("a-1.mp3", 900, 1000)  # cut at the file's end
    assert audio.clip(2500, 2600) is None


def test_hrefs_and_ids_are_escaped_by_construction() -> None:
    out = io.BytesIO()
    audio = AudioTrack((AudioPart("a&b.mp3", 0, 1000),))
    write_smil(out, [Group("s0", 0, 10, (Par("w0", 0, 10),))], text_href="x<y>.xhtml", audio=audio)
    data = out.getvalue()
    assert b"a&amp;b.mp3" in data and b"x&lt;y&gt;.xhtml#w0" in data
    etree.fromstring(data)
