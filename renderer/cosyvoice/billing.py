"""Billed characters and prices, counted exactly as the service counts them (pure).

Reference §5.2: every Han character (simplified or traditional, Japanese kanji and Korean
hanja included) counts **2**; every other code point counts 1 (ASCII, digits,
punctuation including full-width, spaces and newlines, kana, hangul). SSML tags are not
counted, the text inside them is (``<speak>你好</speak>`` = 4). The same count applies
to the limits (§5.1: 20,000 per continue-task, 200,000 per task) and to the bill, which
is priced per 10,000 characters (§5.2). LaTeX delimiters and commands count as ordinary
characters (§7).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from renderer.cosyvoice.errors import CosyVoiceConfigError
from renderer.cosyvoice.models import MODELS
from renderer.engine import PriceList

#: code point ranges of Unicode's Han script (ideographs, radicals, iteration marks)
HAN_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x2E99),
    (0x2E9B, 0x2EF3),
    (0x2F00, 0x2FD5),
    (0x3005, 0x3005),
    (0x3007, 0x3007),
    (0x3021, 0x3029),
    (0x3038, 0x303B),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FA1F),
    (0x30000, 0x323AF),
)

PER_TASK_LIMIT = 200_000
PER_MESSAGE_LIMIT = 20_000


def is_han(ch: str) -> bool:
    cp = ord(ch)
    if cp < 0x2E80:
        return False
    return any(lo <= cp <= hi for lo, hi in HAN_RANGES)


def billed_chars(text: str) -> int:
    """Characters the service bills for ``text`` (plain text: a Han character counts 2)."""
    return len(text) + sum(1 for ch in text if is_han(ch))


def ssml_billed_chars(ssml: str) -> int:
    """Billed characters of an SSML document: its text content only, tags are free."""
    from ssml.build import text_content

    return billed_chars(text_content(ssml))


# --- prices -----------------------------------------------------------------------------

#: CNY per 10,000 billed characters (reference §5.2)
DEFAULT_PRICES: Mapping[str, Decimal] = {name: m.price_per_10k for name, m in MODELS.items()}
DEFAULT_CURRENCY = "CNY"


@dataclass(frozen=True)
class PriceTable:
    per_10k: Mapping[str, Decimal]
    currency: str = DEFAULT_CURRENCY
    source: str = "published list prices (Beijing)"

    def price_list(self, model: str, region: str | None = None) -> PriceList:
        """``model``'s price, or a CosyVoiceConfigError when the table has none."""
        if model not in self.per_10k:
            raise CosyVoiceConfigError(
                f"the price table ({self.source}) has no price for {model}",
                hint="add the model to the --prices file or NARRATE_COSYVOICE_PRICES",
            )
        return PriceList(model, self.currency, self.per_10k[model], self.source, region)

    def price(self, model: str, chars: int) -> Decimal:
        return self.price_list(model).price(chars)


def default_prices() -> PriceTable:
    return PriceTable(dict(DEFAULT_PRICES))


def parse_prices(text: str, source: str) -> PriceTable:
    """A price table from JSON: ``{"currency": "CNY", "per_10k_chars": {model: price}}``.

    A flat ``{model: price}`` object is accepted too. Models left out keep the defaults.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CosyVoiceConfigError(
            f"price table {source} is not valid JSON: {exc}",
            hint='write {"currency": "CNY", "per_10k_chars": {"cosyvoice-v3-flash": 1.0}}',
        ) from exc
    if not isinstance(data, dict):
        raise CosyVoiceConfigError(f"price table {source} must be a JSON object")
    currency = str(data.get("currency", DEFAULT_CURRENCY))
    table = data.get("per_10k_chars", {k: v for k, v in data.items() if k != "currency"})
    if not isinstance(table, dict):
        raise CosyVoiceConfigError(f"per_10k_chars in {source} must be an object")
    prices = dict(DEFAULT_PRICES)
    for model, value in table.items():
        try:
            price = Decimal(str(value))
        except InvalidOperation as exc:
            raise CosyVoiceConfigError(
                f"price {value!r} for {model} in {source} is not a number"
            ) from exc
        if price < 0:
            raise CosyVoiceConfigError(f"price for {model} in {source} is negative")
        prices[str(model)] = price
    return PriceTable(prices, currency, source)


def load_prices(path: Path | None, env: Mapping[str, str]) -> PriceTable:
    """``--prices FILE``, else ``NARRATE_COSYVOICE_PRICES`` (a file), else the defaults."""
    chosen = path or (
        Path(env["NARRATE_COSYVOICE_PRICES"]) if env.get("NARRATE_COSYVOICE_PRICES") else None
    )
    if chosen is None:
        return default_prices()
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise CosyVoiceConfigError(
            f"cannot read the price table {chosen}: {exc.strerror}",
            hint="give a readable JSON file with --prices or NARRATE_COSYVOICE_PRICES",
        ) from exc
    return parse_prices(text, str(chosen))


def total_billed(texts: Iterable[str]) -> int:
    return sum(billed_chars(t) for t in texts)
