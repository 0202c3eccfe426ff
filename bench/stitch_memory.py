"""Peak memory of rendering one chapter, for two chapter lengths: it must not grow with them.

Builds two single-chapter Markdown documents from the novel (a short one and one about
four times as long), renders each cold with ``narrate render`` (espeak-ng, a fresh home),
and samples the resident memory of every process of the render (the parent that plans,
fans in and exports captions; the pool workers that synthesize and stitch; ffmpeg) every
20 ms. Prints, per length, the audio duration and the peak RSS of each kind of process,
then the ratio long/short of each peak (the goal: about 1.0, i.e. memory independent of
chapter length).

    .venv/bin/python bench/stitch_memory.py [--short-chars 60000] [--long-chars 240000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOVEL = REPO.parent / "shared" / "corpus" / "h-g-wells_the-time-machine.md"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def chapter_text(chars: int) -> str:
    """One chapter of about ``chars`` characters: the novel's paragraphs, repeated."""
    paragraphs = [
        p.strip()
        for p in NOVEL.read_text().split("\n\n")
        if p.strip() and not p.lstrip().startswith("#")
    ]
    out: list[str] = []
    size = 0
    while size < chars:
        for paragraph in paragraphs:
            out.append(paragraph)
            size += len(paragraph) + 2
            if size >= chars:
                break
    return "# One Long Chapter\n\n" + "\n\n".join(out) + "\n"


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _tree(root: int) -> list[int]:
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(_children(pid))
    return found


def _role(pid: int, root: int) -> str | None:
    if pid == root:
        return "parent"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    if "ffmpeg" in cmdline:
        return "ffmpeg"
    return "worker" if "multiprocessing" in cmdline or "python" in cmdline else None


def _rss_kb(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def render_peaks(document: Path, home: Path) -> tuple[dict[str, int], int, float]:
    """Render ``document`` cold; (peak RSS kB by role, audio duration ms, seconds)."""
    env = {**os.environ, "NARRATE_HOME": str(home), "NARRATE_WORKERS": "2"}
    for name in ("NARRATE_DATABASE_URL", "NARRATE_STORAGE_DIR"):
        env.pop(name, None)
    out = home / "out"
    command = [sys.executable, "-m", "narrate", "render", str(document), "--out", str(out), "-q"]
    started = time.monotonic()
    process = subprocess.Popen(command, env=env, cwd=REPO)
    peaks: dict[str, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in _tree(process.pid):
                role = _role(pid, process.pid)
                if role:
                    peaks[role] = max(peaks.get(role, 0), _rss_kb(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    done.set()
    sampler.join()
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"narrate render failed with exit code {code}")
    manifest = json.loads((out / "manifest.json").read_text())
    duration_ms = sum(c["duration_ms"] for c in manifest["chapters"])
    return peaks, duration_ms, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--short-chars", type=int, default=60_000)
    parser.add_argument("--long-chars", type=int, default=240_000)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="narrate-memory-") as tmp:
        for label, chars in (("short", args.short_chars), ("long", args.long_chars)):
            document = Path(tmp) / f"{label}.md"
            document.write_text(chapter_text(chars))
            peaks, duration_ms, seconds = render_peaks(document, Path(tmp) / label)
            results[label] = peaks
            shown = ", ".join(f"{role} {kb / 1024:.0f} MB" for role, kb in sorted(peaks.items()))
            print(
                f"{label:5s}: {chars:7d} chars, {duration_ms / 60000:6.1f} min of audio, "
                f"rendered in {seconds:5.1f} s; peak RSS: {shown}"
            )
    for role in sorted(results["long"]):
        short, long_ = results["short"].get(role, 0), results["long"][role]
        ratio = long_ / short if short else float("nan")
        print(f"ratio long/short, {role:6s}: {ratio:.2f}  (goal: about 1.00)")


if __name__ == "__main__":
    main()
