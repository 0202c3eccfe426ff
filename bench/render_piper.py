#!/usr/bin/env python3
"""Benchmark: chapters I-III of the novel with narrate's Piper engine against the raw Piper
command line, in one run.

    .venv/bin/python bench/render_piper.py [--input BOOK] [--chapters 1-3] [--repeat N]
                                           [--no-align]

* reference: ``python -m piper -m VOICE.onnx -f out.wav`` (piper-tts's own command line,
  one process, its default threads) reading the same chapters' text, one paragraph a
  line, with the same bundled voice; one WAV, no captions, no encoding.
* narrate: ``narrate render BOOK --chapters 1-3 --engine piper --out TMP --quiet`` with a
  fresh database and storage (nothing reused; the voice's patched model is put in the
  fresh storage first, as any earlier run would have left it): per-chapter MP3s,
  captions and the manifest, one process per core, one inference thread each.

Prints both wall times (best of ``--repeat``), the real-time factor of each (wall time /
audio time), the ratio narrate / reference (target <= 0.7 on 2 cores), the reference's
CPU time (about its time on one core: onnxruntime gives the command line a pinned
inference thread per core, so it already uses both) and narrate's ratio to that, the
peak RSS of the reference and of each kind of narrate process, and checks narrate's
output as tests/test_books.py does (every chapter decodes to its manifest duration, the
captions hold every word in order) and, unless ``--no-align``, the caption times against
the forced aligner (pocketsphinx) sentence by sentence, as
tests/renderer/piper/test_piper_alignment.py does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from stitch_memory import _role, _rss_kb, _tree  # noqa: E402

from jobs.render import RenderRequest, read_document  # noqa: E402
from renderer.audio import decode_pcm, decoded_duration_ms  # noqa: E402
from renderer.engine import engine_cache_dir  # noqa: E402
from renderer.piper.model import patched_model  # noqa: E402
from renderer.piper.voices import bundled_voice  # noqa: E402
from renderer.timing import TimedWord  # noqa: E402
from ssml.ingest import load, parse_chapter_range, select_chapters  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.epub"


def reference(text: str, workdir: Path) -> tuple[float, float, float, int]:
    """(wall seconds, audio seconds, CPU seconds, peak RSS kB) of the raw Piper command
    line. Its CPU time is about what it would take on one core: onnxruntime runs its
    inference on a thread per core (pinned, so taskset cannot hold it to one)."""
    voice = bundled_voice()
    out = workdir / "reference.wav"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "piper", "-m", str(voice.model), "-c", str(voice.config),
         "-f", str(out)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(text.encode())
    process.stdin.close()
    _pid, status, usage = os.wait4(process.pid, 0)  # its own peak RSS, not the children's
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"the piper command line failed ({process.returncode})")
    with wave.open(str(out)) as wav:
        audio = wav.getnframes() / wav.getframerate()
    return wall, audio, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def narrate_render(
    book: Path, chapters: str, home: Path
) -> tuple[float, dict[str, int], dict[str, object]]:
    """(wall seconds, peak RSS kB by kind of process, manifest) of a cold render."""
    env = home_env(home)
    patched_model(bundled_voice(), engine_cache_dir(home / "storage"))  # as earlier runs leave it
    out = home / "out"
    command = [sys.executable, "-m", "narrate", "render", str(book), "--chapters", chapters,
               "--engine", "piper", "--out", str(out), "--quiet"]  # fmt: skip
    peaks: dict[str, int] = {}
    done = threading.Event()
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL)

    def sample() -> None:
        while not done.is_set():
            for pid in _tree(process.pid):
                role = _role(pid, process.pid)
                if role:
                    peaks[role] = max(peaks.get(role, 0), _rss_kb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"narrate render failed with exit code {code}")
    return wall, peaks, json.loads((out / "manifest.json").read_text())


def home_env(home: Path) -> dict[str, str]:
    """The environment of a narrate whose database and storage are under ``home``."""
    env = {**os.environ, "NARRATE_HOME": str(home)}
    for variable in ("NARRATE_DATABASE_URL", "NARRATE_STORAGE_DIR"):
        env.pop(variable, None)
    return env


def word_track(home: Path, manifest: dict[str, object]) -> Any:
    """``narrate captions JOB --format json``: the render's word track."""
    command = [sys.executable, "-m", "narrate", "captions", str(manifest["job"]),
               "--format", "json"]  # fmt: skip
    done = subprocess.run(command, env=home_env(home), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def check_output(book: Path, chapters: str, home: Path, manifest: dict[str, object]) -> list[str]:
    """tests/test_books.py's checks on the render; returns what failed (empty: passed)."""
    track = word_track(home, manifest)
    document = read_document(RenderRequest(book, "piper", chapters=chapters))
    problems = []
    entries = manifest["chapters"]
    assert isinstance(entries, list)
    for chapter, entry, words in zip(document.chapters, entries, track["chapters"], strict=True):
        decoded = decoded_duration_ms(home / "out" / entry["audio"])
        if abs(decoded - entry["duration_ms"]) > 60:
            problems.append(f"{entry['audio']}: decodes to {decoded} ms, manifest says "
                            f"{entry['duration_ms']}")  # fmt: skip
        texts = [w["text"] for w in words["words"]]
        if " ".join(texts).split() != chapter.text.split():
            problems.append(f"chapter {entry['index']}: captions do not hold every word in order")
        starts = [w["start_ms"] for w in words["words"]]
        if starts != sorted(starts) or words["words"][-1]["end_ms"] > entry["duration_ms"]:
            problems.append(f"chapter {entry['index']}: word times out of order or too late")
    return problems


def aligner_figures(home: Path, manifest: dict[str, object]) -> str:
    """Caption word starts against pocketsphinx, sentence by sentence, on the MP3s."""
    from tests.jobs.test_chapter_alignment import RATE
    from tests.renderer.piper.test_piper_alignment import differences, figures

    track = word_track(home, manifest)
    found: list[int] = []
    failed = 0
    skipped: list[str] = []
    entries = manifest["chapters"]
    assert isinstance(entries, list)
    for entry, chapter in zip(entries, track["chapters"], strict=True):
        pcm = decode_pcm(home / "out" / entry["audio"], RATE)
        words = [
            TimedWord(w["text"], w["char_start"], w["char_end"], w["start_ms"], w["end_ms"])
            for w in chapter["words"]
        ]
        more, bad = differences(pcm, words, skipped=skipped)
        found += more
        failed += bad
    median, p90 = figures(found)
    within = sum(abs(d) <= 100 for d in found) / len(found)
    return (
        f"{len(found)} words: median {median} ms, p90 {p90} ms, within 100 ms {within:.0%}, "
        f"mean signed {statistics.mean(found):+.0f} ms; sentences not aligned {failed}, left "
        f"out for words outside the aligner's dictionary {len(skipped)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[1])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--chapters", default="1-3")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-align", action="store_true")
    args = parser.parse_args()
    document = select_chapters(load(args.input), parse_chapter_range(args.chapters))
    text = "\n".join(block for chapter in document.chapters for block in chapter.blocks) + "\n"
    print(f"input: {args.input.name}, chapters {args.chapters} "
          f"({', '.join(c.title for c in document.chapters)}): {len(text)} chars")  # fmt: skip
    print(f"cores: {os.cpu_count()}; NARRATE_WORKERS={os.environ.get('NARRATE_WORKERS', '')}")
    narrate_runs: list[float] = []
    reference_runs: list[float] = []
    cpu_runs: list[float] = []
    with tempfile.TemporaryDirectory(prefix="narrate-piper-bench-") as tmp:
        workdir = Path(tmp)
        for run in range(args.repeat):
            ref_wall, ref_audio, ref_cpu, ref_rss = reference(text, workdir)
            reference_runs.append(ref_wall)
            cpu_runs.append(ref_cpu)
            rtf = ref_wall / ref_audio
            print(f"run {run + 1}: reference {ref_wall:.1f} s for {ref_audio:.0f} s of audio "
                  f"(RTF {rtf:.3f}; {ref_cpu:.1f} s of CPU), "
                  f"peak RSS {ref_rss / 1024:.0f} MB")  # fmt: skip
            home = workdir / f"home-{run}"
            wall, peaks, manifest = narrate_render(args.input, args.chapters, home)
            narrate_runs.append(wall)
            chapters = manifest["chapters"]
            assert isinstance(chapters, list)
            audio = sum(c["duration_ms"] for c in chapters) / 1000
            shown = ", ".join(f"{k} {v / 1024:.0f} MB" for k, v in sorted(peaks.items()))
            print(f"run {run + 1}: narrate {wall:.1f} s for {audio:.0f} s of audio "
                  f"(RTF {wall / audio:.3f}); peak RSS per process: {shown}")  # fmt: skip
        problems = check_output(args.input, args.chapters, home, manifest)
        print("output checks: " + ("passed" if not problems else "; ".join(problems)))
        if not args.no_align:
            print("forced aligner: " + aligner_figures(home, manifest))
    best_narrate, best_reference = min(narrate_runs), min(reference_runs)
    print(f"reference (piper command line, one process): {best_reference:.1f} s")
    print(f"narrate render --engine piper (cold):        {best_narrate:.1f} s")
    print(f"ratio narrate / reference: {best_narrate / best_reference:.2f}  (target <= 0.7)")
    print(f"ratio narrate / reference's CPU time (its time on one core): "
          f"{best_narrate / min(cpu_runs):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
