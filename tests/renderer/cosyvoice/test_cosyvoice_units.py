"""Pure parts of the CosyVoice engine: billing, settings checks, task plans, errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from narrate.errors import FatalError, RetryableError, UsageError, VoiceNotFoundError
from renderer.cosyvoice.billing import billed_chars, parse_prices, ssml_billed_chars
from renderer.cosyvoice.config import from_env
from renderer.cosyvoice.errors import (
    RULES,
    CosyVoiceAccountError,
    CosyVoiceAuthError,
    CosyVoiceThrottledError,
    handshake_error,
    service_error,
)
from renderer.cosyvoice.options import TaskSettings, check_voice_syntax, resolve
from renderer.cosyvoice.text import (
    SAFE_SENTENCE_MS,
    expected_ms,
    plan_task,
    sentence_spans,
    to_display,
)
from ssml.build import build_ssml

# --- billing (§5.2) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Hello, world.", 13),
        ("你好", 4),
        ("你好，世界。", 10),  # full-width punctuation counts 1
        ("學而時習之", 10),  # traditional Han
        ("かな漢字", 6),  # kana 1, kanji 2
        ("한국어", 3),  # hangul 1
        ("a b\n", 4),  # spaces and newlines count
        ("𠀀", 2),  # extension B
    ],
)
def test_billed_chars_count_han_twice(text: str, count: int) -> None:
    assert billed_chars(text) == count


def test_ssml_tags_are_not_billed() -> None:
    assert ssml_billed_chars("<speak>你好</speak>") == 4
    assert ssml_billed_chars('<speak>Hi<break time="500ms"/> there</speak>') == 8


def test_price_table_overrides_and_rounds() -> None:
    table = parse_prices('{"currency": "USD", "per_10k_chars": {"cosyvoice-v3-flash": 0.5}}', "t")
    assert table.currency == "USD"
    assert table.price("cosyvoice-v3-flash", 12_345) == Decimal("0.6173")
    assert table.price("cosyvoice-v3-plus", 10_000) == Decimal("2.0000")  # default kept
    with pytest.raises(UsageError):
        parse_prices("[1, 2]", "t")


# --- configuration --------------------------------------------------------------------


def test_region_endpoints_and_override() -> None:
    beijing = from_env({})
    assert beijing.ws_url == "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
    intl = from_env({"NARRATE_COSYVOICE_REGION": "singapore", "NARRATE_COSYVOICE_WORKSPACE": "ws1"})
    assert intl.ws_url == "wss://ws1.ap-southeast-1.maas.aliyuncs.com/api-ws/v1/inference"
    assert (
        intl.http_url
        == "https://ws1.ap-southeast-1.maas.aliyuncs.com/api/v1/services/audio/tts/customization"
    )
    local = from_env({"NARRATE_COSYVOICE_URL": "ws://127.0.0.1:9/x"})
    assert local.http_url == "http://127.0.0.1:9/api/v1/services/audio/tts/customization"
    with pytest.raises(UsageError, match="region"):
        from_env({"NARRATE_COSYVOICE_REGION": "mars"})


def test_the_configured_default_model_is_part_of_the_request() -> None:
    """Another model is other audio: a request without a model is completed with the
    configured one, so that it reaches the segment's content hash."""
    from jobs.planning import Voicing, segment_hash
    from renderer.cosyvoice.engine import CosyVoiceEngine
    from renderer.cosyvoice.models import DEFAULT_VOICE
    from renderer.engine import SynthesisRequest

    hashes = set()
    for model in ("cosyvoice-v3-flash", "cosyvoice-v3-plus"):
        engine = CosyVoiceEngine(config=from_env({"NARRATE_COSYVOICE_MODEL": model}))
        completed = engine.complete(SynthesisRequest(ssml="", voice=DEFAULT_VOICE))
        assert completed.model == model
        voicing = Voicing("cosyvoice", DEFAULT_VOICE, 1.0, 1.0, 1.0, model=completed.model)
        hashes.add(segment_hash(voicing, "Hello.", "<speak>Hello.</speak>"))
    assert len(hashes) == 2


def test_the_key_never_shows() -> None:
    config = from_env({"DASHSCOPE_API_KEY": "sk-secret-123"})
    assert "sk-secret-123" not in repr(config)
    assert "sk-secret-123" not in config.account
    assert config.account.startswith("cosyvoice/")
    assert from_env({"DASHSCOPE_API_KEY": "other"}).account != config.account
    with pytest.raises(UsageError, match="DASHSCOPE_API_KEY"):
        from_env({}).require_key()


# --- what is refused before any request ------------------------------------------------


def settings(**kw: object) -> TaskSettings:
    args: dict[str, object] = {
        "model": "cosyvoice-v3-flash",
        "voice": "longanyang",
        "rate": 1.0,
        "pitch": 1.0,
        "volume": 1.0,
        "options": (),
        "region": "beijing",
    }
    args.update(kw)
    return resolve(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message", "hint"),
    [
        ({"model": "cosyvoice-v9"}, "not a CosyVoice model", "--model"),
        (
            {
                "model": "cosyvoice-v3.5-flash",
                "voice": "cosyvoice-v3.5-flash-me-1",
                "region": "singapore",
            },
            "not offered in the singapore region",
            "NARRATE_COSYVOICE_REGION=beijing",
        ),
        ({"model": "cosyvoice-v3.5-plus"}, "has no system voices", "narrate voices create"),
        ({"voice": "longxiaochun_v2"}, "v2 voice", "--voice longanyang"),
        ({"model": "cosyvoice-v2"}, "v3 voice", "--voice longxiaochun_v2"),
        (
            {"voice": "cosyvoice-v3-plus-narrator-1a2b"},
            "made for cosyvoice-v3-plus",
            "--model cosyvoice-v3-plus",
        ),
        (
            {"options": (("instruction", "请用广东话表达。"),), "model": "cosyvoice-v3-plus"},
            "takes no instruction",
            "cosyvoice-v3-flash",
        ),
        ({"options": (("instruction", "x" * 101),)}, "101 characters", "1 to 100"),
        ({"options": (("sample_rate", "12000"),)}, "sample_rate=12000", "24000"),
        ({"options": (("seed", "70000"),)}, "out of range", "0 to 65535"),
        ({"options": (("bit_rate", "600"), ("format", "opus"))}, "out of range", "6 to 510"),
        ({"options": (("bit_rate", "64"),)}, "only to opus", "format=opus"),
        ({"options": (("format", "flac"),)}, "not a CosyVoice format", "pcm"),
        ({"options": (("language", "xx"),)}, "language=xx", "zh"),
        ({"options": (("emotion", "happy"),)}, "not a CosyVoice option", "known options"),
        ({"rate": 3.0}, "--rate 3.0 is out of range", "0.5 and 2.0"),
    ],
)
def test_refused_before_sending(kw: dict[str, object], message: str, hint: str) -> None:
    with pytest.raises(UsageError) as caught:
        settings(**kw)
    assert message in caught.value.message
    assert caught.value.hint is not None and hint in caught.value.hint
    assert caught.value.exit_code == 2


def test_allowed_combinations_and_wire_parameters() -> None:
    s = settings(
        volume=2.0,
        rate=1.5,
        options=(
            ("instruction", "请用广东话表达。"),
            ("seed", "7"),
            ("language", "zh"),
            ("format", "opus"),
        ),
    )
    params = s.parameters(ssml_mode=False)
    assert params["volume"] == 100 and params["rate"] == 1.5
    assert params["instruction"] == "请用广东话表达。" and params["seed"] == 7
    assert params["language_hints"] == ["zh"] and params["bit_rate"] == 32
    assert params["word_timestamp_enabled"] is True and "enable_ssml" not in params
    assert settings(volume=0.5).volume == 25
    assert settings(model="cosyvoice-v2", voice="longwan_v2").voice == "longwan_v2"
    assert settings(model="cosyvoice-v3.5-plus", voice="cosyvoice-v3.5-plus-vd-me-1").model
    off = settings(options=(("word_timestamps", "off"),)).parameters(ssml_mode=True)
    assert "word_timestamp_enabled" not in off and off["enable_ssml"] is True


def test_voice_syntax() -> None:
    check_voice_syntax("longanyang")
    for bad in ("", "has space", "cosyvoice-v1-old-1"):
        with pytest.raises(VoiceNotFoundError):
            check_voice_syntax(bad)


# --- task plans --------------------------------------------------------------------------


def test_plain_plan_feeds_sentences_and_keeps_breaks() -> None:
    ssml = build_ssml(
        ["First one. Second one!", "第二段。还有一句？"], pause_ms=700, dialect="cosyvoice"
    )
    plan = plan_task(ssml)
    assert not plan.ssml_mode
    assert "".join(m.text for m in plan.messages) == plan.text.rstrip()
    assert [m.text.strip() for m in plan.messages] == [
        "First one.",
        "Second one!",
        "第二段。",
        "还有一句？",
    ]
    assert plan.breaks == ((22, 700),)
    assert plan.billed == billed_chars(plan.text.rstrip())


def test_ssml_plan_sends_one_message_and_bills_text_only() -> None:
    ssml = '<speak>Call <say-as interpret-as="telephone">110</say-as> now.</speak>'
    plan = plan_task(ssml)
    assert plan.ssml_mode and len(plan.messages) == 1 and plan.messages[0].text == ssml
    assert plan.billed == len("Call 110 now.")
    assert not plan_task(ssml, ssml_setting="off").ssml_mode
    assert plan_task("<speak>plain</speak>", ssml_setting="on").ssml_mode


def test_long_sentences_are_cut_and_flushed() -> None:
    clause = "and the long road went on past the hills, "
    text = "It was " + clause * 30 + "until night."
    assert expected_ms(text) > SAFE_SENTENCE_MS
    plan = plan_task(f"<speak>{text}</speak>")
    assert len(plan.messages) > 1
    assert all(m.flush_after for m in plan.messages[:-1]) and not plan.messages[-1].flush_after
    assert all(expected_ms(m.text) <= SAFE_SENTENCE_MS for m in plan.messages)
    assert "".join(m.text for m in plan.messages) == text


def test_sentence_spans_cover_text() -> None:
    text = "One. Two? 三。四！\nFive"
    spans = sentence_spans(text)
    assert "".join(text[a:b] for a, b in spans) == text
    assert [text[a:b].strip() for a, b in spans] == ["One.", "Two?", "三。", "四！", "Five"]


def test_limits_and_empty_text() -> None:
    with pytest.raises(UsageError, match="20000"):
        plan_task("<speak>" + "字" * 10_001 + "</speak>", ssml_setting="on")
    with pytest.raises(UsageError, match="no text"):
        plan_task("<speak> </speak>")


# --- the error map (§5.4) ----------------------------------------------------------------


def test_every_documented_code_has_a_family() -> None:
    retryable = {
        "Throttling",
        "Throttling.RateQuota",
        "Throttling.BurstRate",
        "Throttling.Concurrency",
        "LimitRequests",
        "Throttling.AllocationQuota",
        "InternalError",
        "ServiceUnavailable",
        "GatewayTimeout",
        "RequestTimeOut",
        "CLIENT_ERROR",
    }
    fatal = {
        "Arrearage",
        "PrepaidBillOverdue",
        "PostpaidBillOverdue",
        "CommodityNotPurchased",
        "InvalidApiKey",
        "AccessDenied",
        "InvalidParameter",
        "DataInspectionFailed",
    }
    assert retryable | fatal <= set(RULES)
    for code in retryable:
        error = service_error(code, "m", "task1")
        assert isinstance(error, RetryableError), code
        assert code in error.message and "task1" in error.message and error.hint
    for code in fatal:
        error = service_error(code, "m", "task1")
        assert isinstance(error, FatalError), code
        assert code in error.message and "task1" in error.message and error.hint
    assert isinstance(service_error("Arrearage", "x", "t"), CosyVoiceAccountError)
    assert isinstance(service_error("InvalidApiKey", "x", "t"), CosyVoiceAuthError)
    assert service_error("InvalidApiKey", "x", "t").exit_code == 2
    throttled = service_error("Throttling.RateQuota", "x", "t")
    assert isinstance(throttled, CosyVoiceThrottledError) and throttled.pause_s > 0


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("[tts:]Engine return error code: 418", "does not fit the model"),
        ("[tts:]Engine return error code: 428", "instruction"),
        ("SSML text is not supported at the moment!", "ssml=off"),
        ("Request voice is invalid!", "--voice"),
    ],
)
def test_invalid_parameter_messages_get_specific_hints(message: str, hint: str) -> None:
    error = service_error("InvalidParameter", message, "t")
    assert isinstance(error, FatalError) and error.hint is not None and hint in error.hint


def test_unknown_codes_and_handshake_statuses() -> None:
    assert isinstance(service_error("Weird.Internal", "x", "t"), RetryableError)
    assert isinstance(service_error("Weird", "x", "t"), FatalError)
    assert isinstance(handshake_error(401, "", "ws://h"), CosyVoiceAuthError)
    assert isinstance(handshake_error(429, "", "ws://h"), CosyVoiceThrottledError)
    assert isinstance(handshake_error(503, "", "ws://h"), RetryableError)
    assert isinstance(handshake_error(404, "", "ws://h"), FatalError)


def test_language_hint_is_taken_off_the_document() -> None:
    ssml = '<speak xml:lang="zh">你好<sub alias="世界">天下</sub>。</speak>'
    plan = plan_task(ssml, ssml_setting="on")
    assert plan.ssml_mode and plan.language == "zh"
    assert plan.messages[0].text == '<speak>你好<sub alias="世界">天下</sub>。</speak>'
    assert settings().parameters(ssml_mode=True, language_hint="zh")["language_hints"] == ["zh"]
    chosen = settings(options=(("language", "en"),))
    assert chosen.parameters(ssml_mode=True, language_hint="zh")["language_hints"] == ["en"]
    assert "language_hints" not in settings().parameters(ssml_mode=False, language_hint="xx")


def test_aliases_are_sent_as_plain_text_and_marks_map_back_to_the_display_text() -> None:
    ssml = '<speak>When <sub alias="f prime of x">f′(x)</sub> exists, it is fine.\n</speak>'
    plan = plan_task(ssml)
    assert not plan.ssml_mode  # <sub> alone needs no SSML mode
    assert [m.text for m in plan.messages] == ["When f prime of x exists, it is fine."]
    display = "When f′(x) exists, it is fine.\n"
    said = plan.text
    for word, shown in [("When", "When"), ("prime", "f′(x)"), ("of", "f′(x)"), ("it", "it")]:
        start = said.index(word)
        a, b = to_display(plan.subs, start, start + len(word))
        assert display[a:b] == shown


def test_long_cuts_never_split_a_formula() -> None:
    formula = r"\(a_1 + a_2 + a_3, b_1\)"
    text = "Then " + ", ".join(["we add the next term " + formula] * 25) + " at the end."
    plan = plan_task(f"<speak>{text}</speak>")
    assert len(plan.messages) > 1 and "".join(m.text for m in plan.messages) == text
    for message in plan.messages:
        assert message.text.count(r"\(") == message.text.count(r"\)")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (None, "Requests rate limit exceeded, please try again later."),
        ("Throttling.SomethingNew", "Too many requests"),
    ],
)
def test_unlisted_throttling_answers_are_retryable_throttles(
    code: str | None, message: str
) -> None:
    from renderer.cosyvoice.errors import CosyVoiceThrottledError, service_error

    error = service_error(code, message, "task-1")
    assert isinstance(error, CosyVoiceThrottledError)
    assert "length limit" not in str(error)
