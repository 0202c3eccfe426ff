"""What an author publishes, end to end through ``narrate render``: mastered chapters that
pass ``narrate check``, tags read back with mutagen, credits, one m4b with chapter marks
(read by ffmpeg and by mutagen), a book-level WebVTT, and the mastering report."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from mutagen.id3 import ID3
from mutagen.mp4 import MP4

from renderer.audio import decoded_duration_ms, ffmpeg_exe
from tests.conftest import SAMPLE
from tests.jobs.conftest import Cluster
from tests.ssml.test_ingest_epub import CONTAINER, nav_doc, xhtml
from tests.test_cli import check_output_folder, narrate


@pytest.fixture(scope="module")
def cover(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cover") / "cover.jpg"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "color=c=0x2f5fd0:s=64x64", "-frames:v", "1", str(path)],
        check=True,
    )  # fmt: skip
    return path


def check_profile(env: dict[str, str], files: list[Path], name: str) -> list[dict[str, object]]:
    result = narrate(env, "check", *files, "--profile", name, "--json")
    reports: list[dict[str, object]] = json.loads(result.stdout)
    failing = {r["file"]: [x["rule"] for x in r["rules"] if not x["passed"]] for r in reports}  # type: ignore[index, union-attr]
    assert result.returncode == 0, failing
    return reports


def test_acx_master_with_credits_and_tags(env: dict[str, str], tmp_path: Path, cover: Path) -> None:
    out = tmp_path / "acx"
    result = narrate(
        env, "render", SAMPLE, "--out", out, "--master", "acx", "--credits", "-q",
        "--author", "Ada Writer", "--narrator", "Sam Reader", "--cover", cover,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = check_output_folder(out)
    chapters = manifest["chapters"]
    assert isinstance(chapters, list)
    titles = [c["title"] for c in chapters]
    assert titles[0] == "Opening Credits" and titles[-1] == "Closing Credits"
    assert chapters[0]["audio"] == "00-opening-credits.mp3"
    files = [out / c["audio"] for c in chapters]
    reports = check_profile(env, files, "acx")
    master = manifest["master"]
    assert isinstance(master, dict)
    assert master["profile"] == "acx" and master["passed"] is True
    assert [c["index"] for c in master["chapters"]] == [c["index"] for c in chapters]
    for ours, theirs in zip(master["chapters"], reports, strict=True):
        assert ours["measures"]["rms_db"] == pytest.approx(theirs["measures"]["rms_db"], abs=0.05)  # type: ignore[index]
    page = (out / "report.html").read_text()
    assert page.count("<svg") == len(chapters) and "passes" in page
    # the credits say what they should, in the captions
    opening = (out / chapters[0]["captions"]["vtt"]).read_text()
    assert "Ada Writer" in opening and "Sam Reader" in opening
    assert "The End" in (out / chapters[-1]["captions"]["vtt"]).read_text()
    tags = ID3(out / chapters[1]["audio"])
    assert tags.version[:2] == (2, 4)
    assert str(tags["TIT2"]) == chapters[1]["title"]
    assert str(tags["TALB"]) == "The Lighthouse Keeper's Clock"
    assert str(tags["TPE1"]) == "Ada Writer"
    assert str(tags["TRCK"]) == f"2/{len(chapters)}"
    assert tags.getall("APIC")[0].data == cover.read_bytes()


@pytest.mark.parametrize(("name", "target"), [("podcast", -19.0), ("broadcast", -23.0)])
def test_loudness_profiles_land_on_their_targets(
    env: dict[str, str], tmp_path: Path, name: str, target: float
) -> None:
    out = tmp_path / name
    result = narrate(env, "render", SAMPLE, "--out", out, "--master", name, "-q")
    assert result.returncode == 0, result.stderr
    manifest = check_output_folder(out)
    files = [out / c["audio"] for c in manifest["chapters"]]  # type: ignore[union-attr, index]
    for report in check_profile(env, files, name):
        lufs = report["measures"]["integrated_lufs"]  # type: ignore[index]
        assert lufs == pytest.approx(target, abs=0.5 if name == "broadcast" else 1.0)


def _ffmpeg_chapters(path: Path) -> list[tuple[float, str]]:
    probe = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-f", "ffmetadata", "-"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = []
    for block in probe.stdout.split("[CHAPTER]")[1:]:
        fields = dict(line.split("=", 1) for line in block.strip().splitlines() if "=" in line)
        numerator, denominator = map(int, fields["TIMEBASE"].split("/"))
        found.append((int(fields["START"]) * numerator / denominator, fields["title"]))
    return found


def test_m4b_is_one_book_with_chapter_marks_tags_cover_and_captions(
    env: dict[str, str], tmp_path: Path, cover: Path
) -> None:
    out = tmp_path / "book"
    result = narrate(
        env, "render", SAMPLE, "--out", out, "--format", "m4b", "--master", "podcast", "-q",
        "--title", "Lighthouse Tales", "--author", "Ada Writer", "--cover", cover,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    book = manifest["book"]
    assert book["audio"] == "lighthouse-tales.m4b"
    assert not list(out.glob("*.mp3")) and not list(out.glob("*.flac"))
    path = out / book["audio"]
    assert abs(decoded_duration_ms(path) - book["duration_ms"]) <= 60
    expected = [(c["start_ms"], c["title"]) for c in book["chapters"]]
    assert len(expected) == len(manifest["chapters"]) == 3
    assert sum(c["duration_ms"] for c in manifest["chapters"]) == pytest.approx(
        book["duration_ms"], abs=5
    )
    for (start_s, title), (start_ms, wanted) in zip(_ffmpeg_chapters(path), expected, strict=True):
        assert abs(start_s * 1000 - start_ms) <= 50 and title == wanted
    mp4 = MP4(path)
    assert mp4.chapters is not None
    for chapter, (start_ms, wanted) in zip(mp4.chapters, expected, strict=True):
        assert abs(chapter.start * 1000 - start_ms) <= 50 and chapter.title == wanted
    assert mp4["\xa9nam"] == ["Lighthouse Tales"] and mp4["\xa9ART"] == ["Ada Writer"]
    assert bytes(mp4["covr"][0]) == cover.read_bytes()
    vtt = (out / book["captions"]).read_text()
    cue_starts = re.findall(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) -->", vtt, re.M)
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in cue_starts]
    assert seconds == sorted(seconds)
    assert seconds[-1] * 1000 >= expected[-1][0], (
        "the last chapter's cues are on the book's timeline"
    )
    check_profile(env, [path], "podcast")
    assert manifest["master"]["book"]["passed"] is True


def test_epub_metadata_and_cover_reach_the_tags(
    env: dict[str, str], tmp_path: Path, cover: Path
) -> None:
    opf = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="u">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>Small Book</dc:title><dc:creator>Jo Author</dc:creator>"
        "<dc:language>en</dc:language><dc:date>1901-02-03</dc:date></metadata>"
        '<manifest><item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
        '<item id="cov" href="cover.jpg" media-type="image/jpeg" properties="cover-image"/>'
        '</manifest><spine><itemref idref="c1"/></spine></package>'
    )
    source = tmp_path / "small.epub"
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("META-INF/container.xml", CONTAINER)
        archive.writestr("OEBPS/content.opf", opf)
        archive.writestr("OEBPS/nav.xhtml", nav_doc({"c1.xhtml": "One"}))
        archive.writestr("OEBPS/c1.xhtml", xhtml("<h1>One</h1><p>A very short chapter.</p>"))
        archive.write(cover, "OEBPS/cover.jpg")
    out = tmp_path / "out"
    result = narrate(env, "render", source, "--out", out, "-q")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["title"] == "Small Book" and manifest["authors"] == ["Jo Author"]
    tags = ID3(out / manifest["chapters"][0]["audio"])
    assert str(tags["TPE1"]) == "Jo Author" and str(tags["TDRC"]) == "1901"
    assert tags.getall("APIC")[0].data == cover.read_bytes()


@pytest.mark.postgres
@pytest.mark.distributed
def test_a_submitted_job_is_mastered_by_the_workers(cluster: Cluster, tmp_path: Path) -> None:
    cluster.start_worker("w1")
    job_id = cluster.submit(SAMPLE, "--master", "acx", "--credits", "--author", "Ada Writer")
    assert cluster.wait(job_id)["status"] == "done"
    out = tmp_path / "fetched"
    fetched = cluster.narrate("fetch", job_id, "--out", out)
    assert fetched.returncode == 0, fetched.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["master"]["passed"] is True
    files = [out / c["audio"] for c in manifest["chapters"]]
    assert len(files) == 5  # the credits and three chapters
    check_profile(cluster.env, files, "acx")
