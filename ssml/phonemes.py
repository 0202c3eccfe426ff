"""Phoneme strings converted between alphabets (English), for lexicon entries.

* ``cmu``: CMU dictionary phones with stress digits, space-separated: ``T AH0 M EY1 T OW2``.
* ``ipa``: IPA as in dictionaries: ``təˈmeɪtoʊ`` (stress marks ˈ ˌ before the syllable).
* ``x-espeak``: espeak's own phoneme mnemonics: ``t@m'eItoU``.
* ``pinyin``: Mandarin syllables with tone digits, space-separated: ``dang4 diao4``.

:func:`to_cmu` and :func:`to_espeak` return None when a string cannot be converted
(unknown symbols, or pinyin, which only CosyVoice takes as it is). IPA is read through
CMU, so distinctions CMU does not make (British ``ɒ`` vs ``ɑː``) are lost.
"""

from __future__ import annotations

import re

_CMU_TO_ESPEAK = {
    "AA": "A:",
    "AE": "a",
    "AH": "V",
    "AO": "O:",
    "AW": "aU",
    "AY": "aI",
    "EH": "E",
    "ER": "3:",
    "EY": "eI",
    "IH": "I",
    "IY": "i:",
    "OW": "oU",
    "OY": "OI",
    "UH": "U",
    "UW": "u:",
    "B": "b",
    "CH": "tS",
    "D": "d",
    "DH": "D",
    "F": "f",
    "G": "g",
    "HH": "h",
    "JH": "dZ",
    "K": "k",
    "L": "l",
    "M": "m",
    "N": "n",
    "NG": "N",
    "P": "p",
    "R": "r",
    "S": "s",
    "SH": "S",
    "T": "t",
    "TH": "T",
    "V": "v",
    "W": "w",
    "Y": "j",
    "Z": "z",
    "ZH": "Z",
}
_VOWELS = frozenset(
    ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]
)
_CMU_TOKEN_RE = re.compile(r"^([A-Z]{1,2})([012]?)$")
#: IPA symbols (longest first) -> CMU phones; vowels take the stress of a preceding mark
_IPA_TO_CMU = {
    "tʃ": "CH",
    "t͡ʃ": "CH",
    "dʒ": "JH",
    "d͡ʒ": "JH",
    "aɪ": "AY",
    "aʊ": "AW",
    "eɪ": "EY",
    "oʊ": "OW",
    "əʊ": "OW",
    "ɔɪ": "OY",
    "ɑː": "AA",
    "ɜː": "ER",
    "ɔː": "AO",
    "iː": "IY",
    "uː": "UW",
    "ɑ": "AA",
    "æ": "AE",
    "ʌ": "AH",
    "ə": "AH",
    "ɚ": "ER",
    "ɝ": "ER",
    "ɜ": "ER",
    "ɔ": "AO",
    "ɒ": "AA",
    "ɛ": "EH",
    "e": "EH",
    "ɪ": "IH",
    "i": "IY",
    "ʊ": "UH",
    "u": "UW",
    "o": "OW",
    "a": "AA",
    "p": "P",
    "b": "B",
    "t": "T",
    "d": "D",
    "k": "K",
    "g": "G",
    "ɡ": "G",
    "f": "F",
    "v": "V",
    "θ": "TH",
    "ð": "DH",
    "s": "S",
    "z": "Z",
    "ʃ": "SH",
    "ʒ": "ZH",
    "h": "HH",
    "m": "M",
    "n": "N",
    "ŋ": "NG",
    "l": "L",
    "ɫ": "L",
    "ɹ": "R",
    "r": "R",
    "ɾ": "D",
    "j": "Y",
    "w": "W",
    "x": "HH",
}
_IPA_IGNORED = frozenset(".ːˑ̩̯ʔ/[] \u0361")
_IPA_KEYS = sorted(_IPA_TO_CMU, key=len, reverse=True)


def ipa_to_cmu(ipa: str) -> str | None:
    """``təˈmeɪtoʊ`` -> ``T AH0 M EY1 T OW0``; None if a symbol is unknown."""
    phones: list[str] = []
    stress = ""
    i = 0
    while i < len(ipa):
        c = ipa[i]
        if c in "ˈ'":
            stress, i = "1", i + 1
            continue
        if c in "ˌ,":
            stress, i = "2", i + 1
            continue
        if c in _IPA_IGNORED:
            i += 1
            continue
        key = next((k for k in _IPA_KEYS if ipa.startswith(k, i)), None)
        if key is None:
            return None
        phone = _IPA_TO_CMU[key]
        if phone in _VOWELS:
            phone += stress or "0"
            stress = ""
        phones.append(phone)
        i += len(key)
    return " ".join(phones) or None


def cmu_to_espeak(cmu: str) -> str | None:
    """``T AH0 M EY1 T OW2`` -> ``t@m'eIt,oU``; None if a phone is unknown."""
    out: list[str] = []
    for token in cmu.upper().split():
        m = _CMU_TOKEN_RE.match(token)
        if not m or m.group(1) not in _CMU_TO_ESPEAK:
            return None
        phone, digit = m.groups()
        symbol = _CMU_TO_ESPEAK[phone]
        if phone == "AH" and digit in ("0", ""):
            symbol = "@"
        if phone == "ER" and digit == "0":
            symbol = "3"
        out.append({"1": "'", "2": ","}.get(digit, "") + symbol)
    return "".join(out) or None


def to_cmu(ph: str, alphabet: str) -> str | None:
    """Phonemes as CMU phones, or None."""
    if alphabet == "cmu":
        return ph.upper() if cmu_to_espeak(ph) else None
    if alphabet == "ipa":
        return ipa_to_cmu(ph)
    return None


def to_espeak(ph: str, alphabet: str) -> str | None:
    """Phonemes as espeak mnemonics (for ``[[...]]``), or None."""
    if alphabet in ("x-espeak", "espeak"):
        cleaned = ph.strip()
        return cleaned if cleaned and "]]" not in cleaned and "[[" not in cleaned else None
    cmu = to_cmu(ph, alphabet)
    return cmu_to_espeak(cmu) if cmu else None
