"""What CosyVoice offers: models, regions and endpoints, system voices, parameter ranges.

Facts from the protocol reference (``shared/reference/cosyvoice-protocol.md``):

* Endpoints (§1.1): the WebSocket path is always ``/api-ws/v1/inference``. Beijing is
  ``dashscope.aliyuncs.com``, Singapore ``dashscope-intl.aliyuncs.com``; the
  workspace-dedicated hosts are ``{workspace}.cn-beijing.maas.aliyuncs.com`` and
  ``{workspace}.ap-southeast-1.maas.aliyuncs.com``. API keys are per region. The voice
  enrollment API is ``POST /api/v1/services/audio/tts/customization`` on the same host
  (§8.1).
* Models (§3, §5.3): cosyvoice-v3-flash and -v3-plus in both regions, -v2 in Beijing,
  -v3.5-flash and -v3.5-plus in Beijing only and **without system voices** (cloned or
  designed voices only). ``instruction`` works on v3-flash and the v3.5 models; the SSML
  subset on every model listed here (§6); word timestamps on v2, v3 and v3.5 (§3).
* Parameter ranges (§3): sample rate one of 8000, 16000, 22050, 24000, 44100, 48000 Hz;
  volume 0-100 (50 default); rate and pitch 0.5-2.0; opus bit rate 6-510 kbit/s; seed
  0-65535; language hints zh, en, fr, de, ja, ko, ru, pt, th, id, vi (first one only).
* Prices (§5.2): CNY per 10,000 billed characters, Beijing: v3-flash 1, v3-plus 2, v2 2,
  v3.5-plus 1.5, v3.5-flash 0.8 (the v3.5 figures are third-party).
* Voices must match the model family (§3): ``*_v2`` voices on v2, the v3 system voices
  on v3 models; a cloned or designed voice id is ``<target_model>-<prefix>-<unique>``
  and works only with its target model (§8.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

WS_PATH = "/api-ws/v1/inference"
ENROLLMENT_PATH = "/api/v1/services/audio/tts/customization"

BEIJING = "beijing"
SINGAPORE = "singapore"
#: region name -> (legacy shared host, region id in the workspace host)
REGIONS: dict[str, tuple[str, str]] = {
    BEIJING: ("dashscope.aliyuncs.com", "cn-beijing"),
    SINGAPORE: ("dashscope-intl.aliyuncs.com", "ap-southeast-1"),
}
#: other spellings users may give for a region
REGION_ALIASES = {
    "cn": BEIJING,
    "cn-beijing": BEIJING,
    "china": BEIJING,
    "intl": SINGAPORE,
    "international": SINGAPORE,
    "ap-southeast-1": SINGAPORE,
}


@dataclass(frozen=True)
class Model:
    name: str
    regions: frozenset[str]
    system_voices: bool
    instruction: bool
    clone_regions: frozenset[str]
    design: bool
    #: CNY per 10,000 billed characters (Beijing list price)
    price_per_10k: Decimal

    @property
    def family(self) -> str:
        """``v2``, ``v3`` or ``v3.5``: voices are made for one family."""
        return self.name.removeprefix("cosyvoice-").rsplit("-", 1)[0]


_BOTH = frozenset({BEIJING, SINGAPORE})
_BJ = frozenset({BEIJING})

MODELS: dict[str, Model] = {
    m.name: m
    for m in (
        Model("cosyvoice-v3-flash", _BOTH, True, True, _BJ, True, Decimal("1")),
        Model("cosyvoice-v3-plus", _BOTH, True, False, _BJ, True, Decimal("2")),
        Model("cosyvoice-v2", _BJ, True, False, _BJ, False, Decimal("2")),
        Model("cosyvoice-v3.5-flash", _BJ, False, True, _BJ, True, Decimal("0.8")),
        Model("cosyvoice-v3.5-plus", _BJ, False, True, _BJ, True, Decimal("1.5")),
    )
}
DEFAULT_MODEL = "cosyvoice-v3-flash"

SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
FORMATS = ("pcm", "wav", "mp3", "opus")
VOLUME_RANGE = (0, 100)
DEFAULT_VOLUME = 50
RATE_RANGE = (0.5, 2.0)
PITCH_RANGE = (0.5, 2.0)
BIT_RATE_RANGE = (6, 510)
SEED_RANGE = (0, 65535)
LANGUAGES = ("zh", "en", "fr", "de", "ja", "ko", "ru", "pt", "th", "id", "vi")
#: the reference gives 128 (SDK docstring) and 100 (third party); we hold to the lower
INSTRUCTION_MAX_CHARS = 100

#: Known system voices: id -> (family, display name, languages). Not the full catalogue
#: (the service lists many more); voices outside it are judged by the naming rule in
#: :func:`system_voice_family`.
SYSTEM_VOICES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "longanyang": ("v3", "Long Anyang (male, youthful)", ("zh", "en")),
    "longanhuan": ("v3", "Long Anhuan (female, lively)", ("zh", "en")),
    "longhuhu_v3": ("v3", "Long Huhu (child)", ("zh", "en")),
    "longxiaochun_v3": ("v3", "Long Xiaochun (female, gentle)", ("zh", "en")),
    "longxiaochun_v2": ("v2", "Long Xiaochun (female, gentle)", ("zh", "en")),
    "longwan_v2": ("v2", "Long Wan (female, news)", ("zh",)),
    "longcheng_v2": ("v2", "Long Cheng (male)", ("zh",)),
    "longhua_v2": ("v2", "Long Hua (female, lively)", ("zh",)),
    "longshu_v2": ("v2", "Long Shu (male, narrator)", ("zh",)),
    "loongbella_v2": ("v2", "Bella (female, news)", ("zh",)),
    "loongstella_v2": ("v2", "Stella (female)", ("zh", "en")),
}
DEFAULT_VOICE = "longanyang"
#: the default voice per family, offered in hints
FAMILY_DEFAULT_VOICE = {"v3": "longanyang", "v2": "longxiaochun_v2"}

#: a voice id's characters (system, cloned and designed voices alike)
VOICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: prefixes every source accepts (§8.2: the sources disagree; this is their overlap)
PREFIX_RE = re.compile(r"^[a-z0-9]{1,9}$")


def normalize_region(region: str) -> str | None:
    """The canonical region name for ``region`` (case-insensitive), or ``None``."""
    key = region.strip().lower()
    key = REGION_ALIASES.get(key, key)
    return key if key in REGIONS else None


def custom_voice_model(voice: str) -> str | None:
    """The target model of a cloned/designed voice id (``<model>-<prefix>-<id>``), or None."""
    for name in sorted(MODELS, key=len, reverse=True):
        if voice.startswith(name + "-") and len(voice) > len(name) + 1:
            return name
    if voice.startswith("cosyvoice-"):
        return voice.split("-", 2)[0] + "-" + voice.split("-", 2)[1]  # an unknown model
    return None


def system_voice_family(voice: str) -> str:
    """The family a system voice belongs to: the catalogue, else its ``_vN`` suffix.

    Voices ending in ``_v2`` are v2 voices; everything else is taken as a v3 voice (the v3
    catalogue mixes suffixed and unsuffixed names).
    """
    known = SYSTEM_VOICES.get(voice)
    if known is not None:
        return known[0]
    return "v2" if voice.endswith("_v2") else "v3"
