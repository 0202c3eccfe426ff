#!/usr/bin/env python3
"""Benchmark: what mastering adds to the embedded render of the novel.

    .venv/bin/python bench/master.py [--input BOOK] [--profile acx] [--repeat 2]

Both sides run in this one invocation, alternately, each cold (a fresh home: nothing
reused, every segment synthesized):

* plain: ``narrate render BOOK --out TMP --quiet`` (MP3 at the defaults: the engine's
  22.05 kHz, 128 kbit/s);
* plain at the profile's format: the same with the profile's sample rate and bit rate
  (ACX: 44.1 kHz, 192 kbit/s), so the ratio below isolates what mastering itself costs;
* mastered: ``--master PROFILE`` (ACX: a first pass from the segments' levels, one gain,
  a limiter where needed, room tone, the encoded file measured and checked, encoded again
  when it misses).

Prints the wall times (best of ``--repeat``), the ratios mastered / plain and mastered /
plain at the same format (target <= 1.25), how many chapters passed their check, and the
peak memory of the largest process.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from renderer.profiles import PROFILES  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.epub"


def render(book: Path, workdir: Path, *options: str) -> tuple[float, dict[str, object]]:
    home = Path(tempfile.mkdtemp(dir=workdir, prefix="home-"))
    env = {**os.environ, "NARRATE_HOME": str(home)}
    for variable in ("NARRATE_DATABASE_URL", "NARRATE_STORAGE_DIR"):
        env.pop(variable, None)
    out = home / "out"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "narrate", "render", str(book), "--out", str(out), "--quiet",
         *options],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    return elapsed, json.loads((out / "manifest.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--profile", default="acx")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    spec = PROFILES[args.profile].mastering
    same_format = [
        *(["--sample-rate", str(spec.sample_rate_hz)] if spec.sample_rate_hz else []),
        *(["--bitrate", str(spec.bitrate_kbps)] if spec.bitrate_kbps else []),
    ]
    plain_runs, same_runs, mastered_runs = [], [], []
    manifest: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="narrate-master-bench-") as tmp:
        workdir = Path(tmp)
        for run in range(args.repeat):
            plain, _ = render(args.input, workdir)
            same, _ = render(args.input, workdir, *same_format)
            mastered, manifest = render(args.input, workdir, "--master", args.profile)
            plain_runs.append(plain)
            same_runs.append(same)
            mastered_runs.append(mastered)
            print(
                f"run {run + 1}: plain {plain:.1f} s; plain {' '.join(same_format) or ''} "
                f"{same:.1f} s; --master {args.profile} {mastered:.1f} s"
            )
    master = manifest.get("master")
    assert isinstance(master, dict)
    chapters = master["chapters"]
    passed = sum(1 for c in chapters if c["passed"])
    audio_ms = sum(c["duration_ms"] for c in manifest["chapters"])  # type: ignore[union-attr]
    best_plain, best_same, best_mastered = min(plain_runs), min(same_runs), min(mastered_runs)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"input: {args.input.name}, {len(chapters)} chapters, {audio_ms / 3_600_000:.2f} h")
    print(f"plain render (cold):                       {best_plain:.1f} s")
    print(f"plain render at the profile's format:      {best_same:.1f} s")
    print(f"--master {args.profile} render (cold):             {best_mastered:.1f} s")
    print(f"ratio mastered / plain:                    {best_mastered / best_plain:.2f}")
    ratio = best_mastered / best_same
    print(f"ratio mastered / plain at the same format: {ratio:.2f}  (target <= 1.25)")
    print(f"chapters passing {args.profile}: {passed}/{len(chapters)}")
    print(f"largest process's peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
