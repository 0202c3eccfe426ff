#!/usr/bin/env python3
"""Benchmark: the whole embedded render against a raw espeak-ng + ffmpeg reference.

    .venv/bin/python bench/render_book.py [--input BOOK] [--repeat N]

Both sides run in this one invocation, on the same machine, alternately:

* narrate: ``narrate render BOOK --out TMP --quiet`` with a fresh database and storage
  (nothing reused), MP3 at narrate's defaults (engine rate 22050 Hz, 128 kbit/s).
* reference: the same espeak-ng library (the espeakng-loader wheel) called directly
  through ctypes with the same chapter text, paragraph by paragraph in plain-text mode,
  into one WAV file; then the same ffmpeg binary encodes that WAV to MP3 with the same
  settings. No segmentation, no database, no captions, no parallelism.

Prints both wall times (best of ``--repeat``) and the ratio narrate / reference: below 1.0
means the full pipeline (with word timings, captions, database and per-chapter files)
is faster than the bare synthesis + encode, thanks to using every core.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import espeakng_loader

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from renderer.audio import ffmpeg_exe  # noqa: E402
from ssml.ingest import load  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.epub"
MP3_BITRATE_KBPS = 128
SYNC_MODE = 2  # AUDIO_OUTPUT_SYNCHRONOUS
CHARS_UTF8 = 1


def reference(paragraphs: list[str], workdir: Path) -> tuple[float, float]:
    """(synthesis seconds, encode seconds) for the raw reference."""
    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    rate = lib.espeak_Initialize(SYNC_MODE, 0, espeakng_loader.get_data_path().encode(), 0x8000)
    if rate <= 0:
        raise SystemExit("espeak_Initialize failed")
    lib.espeak_SetVoiceByName(b"en-us")
    wav_path = workdir / "reference.wav"
    callback_type = ctypes.CFUNCTYPE(
        ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
    )
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)

        def on_audio(samples: object, count: int, _events: object) -> int:
            if count > 0:
                wav.writeframes(ctypes.string_at(samples, count * 2))
            return 0

        callback = callback_type(on_audio)
        lib.espeak_SetSynthCallback(callback)
        started = time.perf_counter()
        for paragraph in paragraphs:
            data = paragraph.encode()
            lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, CHARS_UTF8, None, None)
        synth_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav_path),
         "-ar", str(rate), "-c:a", "libmp3lame", "-b:a", f"{MP3_BITRATE_KBPS}k",
         str(workdir / "reference.mp3")],
        check=True,
    )  # fmt: skip
    return synth_s, time.perf_counter() - started


def narrate_render(book: Path, workdir: Path) -> float:
    home = Path(tempfile.mkdtemp(dir=workdir, prefix="home-"))
    env = {**os.environ, "NARRATE_HOME": str(home)}
    for variable in ("NARRATE_DATABASE_URL", "NARRATE_STORAGE_DIR"):
        env.pop(variable, None)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "narrate", "render", str(book), "--out", str(home / "out"),
         "--quiet", "--bitrate", str(MP3_BITRATE_KBPS)],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    document = load(args.input)
    paragraphs = [block for chapter in document.chapters for block in chapter.blocks]
    chars = sum(len(p) for p in paragraphs)
    print(f"input: {args.input.name}: {len(document.chapters)} chapters, {chars} chars")
    print(f"cores: {os.cpu_count()}")
    narrate_runs, reference_runs = [], []
    with tempfile.TemporaryDirectory(prefix="narrate-bench-") as tmp:
        workdir = Path(tmp)
        for run in range(args.repeat):
            synth_s, encode_s = reference(paragraphs, workdir)
            reference_runs.append(synth_s + encode_s)
            narrate_runs.append(narrate_render(args.input, workdir))
            print(
                f"run {run + 1}: reference {synth_s:.1f} s synth + {encode_s:.1f} s mp3 = "
                f"{synth_s + encode_s:.1f} s; narrate render {narrate_runs[-1]:.1f} s"
            )
    best_narrate, best_reference = min(narrate_runs), min(reference_runs)
    print(f"reference (espeak-ng -> one WAV -> ffmpeg MP3): {best_reference:.1f} s")
    print(f"narrate render (whole pipeline, cold):          {best_narrate:.1f} s")
    print(f"ratio narrate / reference: {best_narrate / best_reference:.2f}  (target <= 1.0)")


if __name__ == "__main__":
    main()
