"""Checking measured audio against a delivery profile (pure): every rule passes or fails
with the measured value and the limit, for ``narrate check`` and for mastered renders."""

from __future__ import annotations

from dataclasses import dataclass

from renderer.measure import Measures
from renderer.profiles import Profile, Rule


@dataclass(frozen=True)
class RuleResult:
    rule: str
    label: str
    passed: bool
    #: the measured value (None when the file does not say, e.g. the bit rate of a WAV)
    measured: float | int | bool | None
    low: float | None
    high: float | None
    unit: str

    @property
    def limit(self) -> str:
        """The limit as people read it: ``-23 to -18 dB``, ``at most -3 dB``, ``44100 Hz``."""
        if self.rule == "cbr":
            return "constant"
        low, high = self.low, self.high
        if low is not None and low == high:
            return _with_unit(low, self.unit)
        if low is not None and high is not None:
            return f"{_with_unit(low, self.unit)} to {_with_unit(high, self.unit)}"
        if high is not None:
            return f"at most {_with_unit(high, self.unit)}"
        return f"at least {_with_unit(low or 0, self.unit)}"

    @property
    def shown(self) -> str:
        """The measured value as people read it."""
        if self.measured is None:
            return "unknown"
        if self.rule == "cbr":
            return "constant" if self.measured else "variable"
        return _with_unit(self.measured, self.unit)


@dataclass(frozen=True)
class Report:
    """One file against one profile."""

    profile: str
    passed: bool
    results: tuple[RuleResult, ...]
    measures: Measures

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def as_json(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "passed": self.passed,
            "measures": self.measures.summary(),
            "rules": [
                {
                    "rule": r.rule,
                    "label": r.label,
                    "passed": r.passed,
                    "measured": r.measured,
                    "shown": r.shown,
                    "limit": r.limit,
                }
                for r in self.results
            ],
        }


def check(measures: Measures, profile: Profile) -> Report:
    """Every rule of ``profile`` applied to ``measures``."""
    results = tuple(_apply(rule, measures) for rule in profile.rules)
    return Report(profile.name, all(r.passed for r in results), results, measures)


def _apply(rule: Rule, measures: Measures) -> RuleResult:
    value = getattr(measures, rule.measure)
    low, high = rule.limits(measures)
    if value is None:
        passed = False
    else:
        number = float(value)
        # levels are reported to 0.1 dB by the meters: compare at that precision
        number = round(number, 1) if isinstance(value, float) else number
        passed = (low is None or number >= low) and (high is None or number <= high)
    return RuleResult(rule.key, rule.label, passed, value, low, high, rule.unit)


def _with_unit(value: float | int | bool, unit: str) -> str:
    """``-3 dB``; durations of a minute or more in minutes and seconds."""
    if unit == "ms" and not isinstance(value, bool) and value >= 60_000:
        minutes, seconds = divmod(round(value / 1000), 60)
        return f"{minutes} min {seconds:02d} s" if seconds else f"{minutes} min"
    return f"{_number(value)} {unit}" if unit else _number(value)


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.1f}"
