"""``report.html``: a mastered job's page: per chapter a plot of loudness over time and
the table of rules with what was measured, pass or fail (pure: data in, HTML out).

The plot is inline SVG (no script, no external file): the short-term loudness (3 s
windows, BS.1770) over the chapter, the profile's target as a band, the integrated
loudness as a line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

_WIDTH, _HEIGHT = 720, 180
_PAD_LEFT, _PAD_BOTTOM, _PAD_TOP = 44, 24, 10
_LOW_LUFS, _HIGH_LUFS = -50.0, 0.0


@dataclass(frozen=True)
class ChapterReport:
    index: int
    title: str
    #: one mastering report per file of the chapter (measures, rules, curve)
    files: Sequence[Mapping[str, object]]


def report_page(
    title: str,
    profile: str,
    summary: str,
    target: tuple[float, float] | None,
    chapters: Sequence[ChapterReport],
) -> str:
    """The whole page. ``target`` is the loudness window to shade (LUFS), if the profile
    aims at loudness."""
    passed = all(bool(f.get("passed")) for c in chapters for f in c.files)
    verdict = "every file passes" if passed else "some files fail"
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='profile'>Mastered to <b>{escape(profile)}</b> ({escape(summary)}): "
        f"<span class='{'pass' if passed else 'fail'}'>{verdict}</span>.</p>",
    ]
    for chapter in chapters:
        for number, report in enumerate(chapter.files, start=1):
            part = f", file {number}" if len(chapter.files) > 1 else ""
            body.append(_chapter_section(chapter, part, report, target))
    return _PAGE.format(title=escape(title), body="\n".join(body))


def _chapter_section(
    chapter: ChapterReport,
    part: str,
    report: Mapping[str, object],
    target: tuple[float, float] | None,
) -> str:
    ok = bool(report.get("passed"))
    measures = report.get("measures")
    integrated = measures.get("integrated_lufs") if isinstance(measures, Mapping) else None
    curve = report.get("curve") or []
    assert isinstance(curve, Sequence)
    plot = _plot(
        [(float(t), float(v)) for t, v in curve],
        target,
        float(integrated) if isinstance(integrated, int | float) else None,
    )
    rows = []
    rules = report.get("rules") or []
    assert isinstance(rules, Sequence)
    for rule in rules:
        assert isinstance(rule, Mapping)
        mark = "pass" if rule.get("passed") else "fail"
        rows.append(
            f"<tr class='{mark}'><td>{escape(str(rule.get('label')))}</td>"
            f"<td>{escape(str(rule.get('shown') or _shown(rule.get('measured'))))}</td>"
            f"<td>{escape(str(rule.get('limit')))}</td><td>{mark}</td></tr>"
        )
    gain = report.get("gain_db")
    limiter = report.get("limiter_dbtp")
    applied = f"gain {gain:+.1f} dB" if isinstance(gain, int | float) else ""
    if isinstance(limiter, int | float):
        applied += f", true-peak limiter at {limiter:.1f} dBTP"
    return (
        f"<section><h2>{chapter.index}. {escape(chapter.title)}{part} "
        f"<span class='{'pass' if ok else 'fail'}'>{'passes' if ok else 'fails'}</span></h2>"
        f"{plot}<p class='applied'>{escape(applied)}</p>"
        "<table><tr><th>rule</th><th>measured</th><th>limit</th><th></th></tr>"
        + "".join(rows)
        + "</table></section>"
    )


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}"
    return "unknown" if value is None else str(value)


def _plot(
    curve: Sequence[tuple[float, float]],
    target: tuple[float, float] | None,
    integrated: float | None,
) -> str:
    """Short-term loudness over time as an SVG line chart."""
    inner_w = _WIDTH - _PAD_LEFT - 8
    inner_h = _HEIGHT - _PAD_BOTTOM - _PAD_TOP
    end_s = max((t for t, _ in curve), default=1.0) or 1.0

    def x(seconds: float) -> float:
        return _PAD_LEFT + inner_w * seconds / end_s

    def y(lufs: float) -> float:
        clamped = min(max(lufs, _LOW_LUFS), _HIGH_LUFS)
        return _PAD_TOP + inner_h * (_HIGH_LUFS - clamped) / (_HIGH_LUFS - _LOW_LUFS)

    parts = [
        f"<svg class='plot' viewBox='0 0 {_WIDTH} {_HEIGHT}' role='img' "
        "aria-label='short-term loudness over time'>",
        f"<rect x='{_PAD_LEFT}' y='{_PAD_TOP}' width='{inner_w}' height='{inner_h}' class='bg'/>",
    ]
    if target is not None:
        top, bottom = y(target[1]), y(target[0])
        parts.append(
            f"<rect x='{_PAD_LEFT}' y='{top:.1f}' width='{inner_w}' height='{bottom - top:.1f}' "
            "class='band'/>"
        )
    for level in range(int(_HIGH_LUFS), int(_LOW_LUFS) - 1, -10):
        parts.append(
            f"<line x1='{_PAD_LEFT}' x2='{_PAD_LEFT + inner_w}' y1='{y(level):.1f}' "
            f"y2='{y(level):.1f}' class='grid'/><text x='{_PAD_LEFT - 4}' y='{y(level) + 4:.1f}' "
            f"class='axis' text-anchor='end'>{level}</text>"
        )
    minutes = max(1, int(end_s // 60 // 6) or 1)
    for tick in range(0, int(end_s // 60) + 1, minutes):
        parts.append(
            f"<text x='{x(tick * 60):.1f}' y='{_HEIGHT - 6}' class='axis' "
            f"text-anchor='middle'>{tick} min</text>"
        )
    if integrated is not None:
        parts.append(
            f"<line x1='{_PAD_LEFT}' x2='{_PAD_LEFT + inner_w}' y1='{y(integrated):.1f}' "
            f"y2='{y(integrated):.1f}' class='integrated'/>"
        )
    segments: list[list[str]] = [[]]
    for t, lufs in curve:
        if lufs <= _LOW_LUFS - 20:  # silence or a window not yet full: a gap in the line
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append(f"{x(t):.1f},{y(lufs):.1f}")
    for points in segments:
        if len(points) > 1:
            parts.append(f"<polyline points='{' '.join(points)}' class='line'/>")
    parts.append("</svg>")
    return "".join(parts)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: mastering report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; max-width: 780px; margin: 2em auto;
       color: #1d2330; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.1em; margin-top: 2em; }}
.pass {{ color: #17803d; }} .fail {{ color: #b42318; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ text-align: left; padding: 3px 8px; border-bottom: 1px solid #e3e6ec; }}
tr.fail td {{ background: #fdecea; }}
.plot {{ width: 100%; height: auto; }}
.plot .bg {{ fill: #f7f8fa; }} .plot .band {{ fill: #d8f0df; }}
.plot .grid {{ stroke: #e3e6ec; }} .plot .axis {{ font-size: 11px; fill: #667; }}
.plot .line {{ fill: none; stroke: #2f5fd0; stroke-width: 1.4; }}
.plot .integrated {{ stroke: #b42318; stroke-dasharray: 4 3; }}
.applied {{ color: #667; font-size: 0.9em; }}
</style></head>
<body>
{body}
<p class="applied">Blue: short-term loudness (LUFS, 3 s windows); dashed red: the
integrated loudness; green band: the profile's loudness window.</p>
</body></html>
"""
