"""The web page in a real browser: headless Chromium submits the sample through the form,
sees the job finish, opens the player and checks, at given ``currentTime`` values, that
the lit word is the one the word track says; then measures the highlight's lag while the
audio plays, and keeps a screenshot of the player (``$NARRATE_TEST_ARTIFACTS`` or
``tests/artifacts/``)."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import SAMPLE
from tests.web.conftest import Server

#: the in-page probe of the highlight lag: the audio clock sampled every few ms against
#: performance.now(), the moment each word's span is lit (a MutationObserver, independent
#: of the page's own code), and when `timeupdate` events come (what a timeupdate-driven
#: highlight would have to go on)
LAG_PROBE = """
const done = arguments[arguments.length - 1];
const seconds = arguments[0];
const audio = document.getElementById('audio');
const article = document.getElementById('text');
const starts = window.narratePlayer.starts;
const clock = [], lit = [], ticks = [];
const observer = new MutationObserver(records => {
  const now = performance.now();
  for (const r of records) {
    if (r.target.classList && r.target.classList.contains('on')) {
      lit.push([now, Number(r.target.dataset.i)]);
    }
  }
});
observer.observe(article, {subtree: true, attributes: true, attributeFilter: ['class']});
const sampler = setInterval(() => {
  if (!audio.paused) clock.push([performance.now(), audio.currentTime * 1000]);
}, 2);
const onTick = () => ticks.push([performance.now(), audio.currentTime * 1000]);
audio.addEventListener('timeupdate', onTick);
audio.currentTime = 0;
audio.play().then(() => setTimeout(() => {
  audio.pause(); clearInterval(sampler); observer.disconnect();
  audio.removeEventListener('timeupdate', onTick);
  done({clock, lit, ticks, starts: Array.from(starts)});
}, seconds * 1000)).catch(e => done({error: String(e)}));
"""


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def expected_word(words: list[dict[str, Any]], ms: float) -> int:
    """The word the track says is being spoken at ``ms`` (or -1 between words)."""
    found = -1
    for index, word in enumerate(words):
        if word["start_ms"] <= ms:
            found = index
        else:
            break
    return found if found >= 0 and ms < words[found]["end_ms"] else -1


def lit_at(driver: Any, seconds: float) -> dict[str, Any]:
    """Seek to ``seconds``, let two animation frames pass, and read the lit word."""
    result: dict[str, Any] = driver.execute_async_script(
        """
        const [t, done] = arguments;
        const audio = document.getElementById('audio');
        const read = () => requestAnimationFrame(() => requestAnimationFrame(() => {
          const on = document.querySelectorAll('#text .w.on');
          done({time: audio.currentTime, lit: Number(document.getElementById('text').dataset.lit),
                count: on.length, text: on.length ? on[0].textContent : null});
        }));
        audio.pause();
        audio.addEventListener('seeked', read, {once: true});
        audio.currentTime = t;
        """,
        seconds,
    )
    return result


def lag_figures(probe: dict[str, Any]) -> dict[str, float]:
    """Highlight lag (ms) per word lit while playing: when the span was lit minus when the
    audio clock reached the word's start (the clock fitted to wall time from the samples);
    and the same for a highlight driven by `timeupdate`."""
    clock = probe["clock"]
    assert len(clock) > 100, f"the audio clock was sampled {len(clock)} times"
    walls = [c[0] for c in clock]
    medias = [c[1] for c in clock]
    slope, intercept = statistics.linear_regression(medias, walls)  # wall = a + b * media
    first, last = medias[0], medias[-1]
    starts = probe["starts"]

    def wall_of(ms: float) -> float:
        return float(intercept + slope * ms)

    lags = []
    seen: set[int] = set()
    for wall, index in probe["lit"]:
        start = starts[index]
        if index in seen or not first + 50 <= start <= last - 50:
            continue
        seen.add(index)
        lags.append(wall - wall_of(start))
    tick_lags = []
    for start in starts:
        if not first + 50 <= start <= last - 50:
            continue
        later = [wall for wall, media in probe["ticks"] if media >= start]
        if later:
            tick_lags.append(later[0] - wall_of(start))
    assert len(lags) >= 5, f"only {len(lags)} words were lit while playing"
    ordered = sorted(lags)
    return {
        "words": len(lags),
        "mean_ms": statistics.fmean(lags),
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))],
        "max_ms": max(lags),
        "timeupdate_mean_ms": statistics.fmean(tick_lags) if tick_lags else float("nan"),
        "timeupdate_max_ms": max(tick_lags) if tick_lags else float("nan"),
        "clock_rate": 1 / slope,
    }


def test_submit_watch_and_listen_with_the_words_lit(
    server: Server, browser: Any, artifacts: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = browser
    # the jobs page and its form: submit the sample with the default options (espeak)
    started = time.monotonic()
    driver.get(server.url)
    assert driver.find_element(By.CSS_SELECTOR, "header .mode").text == "embedded"
    driver.find_element(By.CSS_SELECTOR, "input[name=document]").send_keys(str(SAMPLE))
    driver.find_element(By.ID, "render").click()
    wait_for(lambda: "/jobs/" in driver.current_url, 30, "the job page")
    job = driver.current_url.rstrip("/").rsplit("/", 1)[-1]
    # live progress until it is done, with no reload
    wait_for(
        lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-status") == "done",
        240,
        "the job to finish (live status)",
    )
    finished_s = time.monotonic() - started
    wait_for(
        lambda: driver.find_element(By.ID, "downloads").get_attribute("data-state") == "ready",
        60,
        "the downloads",
    )
    names = [
        str(a.get_attribute("href")).rsplit("/", 1)[-1]
        for a in driver.find_elements(By.CSS_SELECTOR, "#downloads a")
    ]
    assert "manifest.json" in names and any(n.endswith(".mp3") for n in names)
    assert any(n.endswith(".vtt") for n in names) and any(n.endswith(".srt") for n in names)
    links = driver.find_elements(By.CSS_SELECTOR, "a.listen")
    assert len(links) == 3
    # the jobs list shows it done too
    listed = server.json("/api/jobs")
    assert listed[0]["job"] == job and listed[0]["status"] == "done"

    # the player of chapter 2
    links[1].click()
    wait_for(
        lambda: driver.execute_script("return document.body.dataset.ready === '1'"), 30, "ready"
    )
    wait_for(
        lambda: driver.execute_script("return document.getElementById('audio').readyState >= 1"),
        30,
        "the audio's metadata",
    )
    track = server.json(f"/api/jobs/{job}/words?chapter=2")["chapters"][0]["words"]
    text = server.json(f"/api/jobs/{job}/chapters/2")["text"]
    assert len(track) > 50
    assert driver.execute_script("return document.querySelectorAll('#text .w').length") > 50

    # at given times, the lit word is the word track's word at that time
    times_ms = [track[i]["start_ms"] + (track[i]["end_ms"] - track[i]["start_ms"]) / 2
                for i in (0, 7, 33, len(track) // 2, len(track) - 1)]  # fmt: skip
    gaps = [
        (a["end_ms"] + b["start_ms"]) / 2
        for a, b in itertools.pairwise(track)
        if b["start_ms"] - a["end_ms"] >= 60
    ]
    times_ms += gaps[:2]  # between words: nothing lit
    times_ms.append(track[12]["start_ms"] + 1)  # just after a word starts
    checked = []
    for ms in times_ms:
        seen = lit_at(driver, ms / 1000)
        want = expected_word(track, seen["time"] * 1000)
        assert seen["lit"] == want, (ms, seen, want)
        if want >= 0:
            word = track[want]
            assert seen["count"] == 1
            assert seen["text"] == text[word["char_start"] : word["char_end"]]
        else:
            assert seen["count"] == 0
        checked.append((round(ms), want))

    # a click on a word seeks to its start
    driver.find_element(By.CSS_SELECTOR, "#text .w[data-i='20']").click()
    at = driver.execute_script("return document.getElementById('audio').currentTime") * 1000
    assert abs(at - track[20]["start_ms"]) < 300, at
    driver.execute_script("document.getElementById('audio').pause()")

    # the highlight's lag while playing
    probe = driver.execute_async_script(LAG_PROBE, 8)
    assert "error" not in probe, probe
    lag = lag_figures(probe)
    print(
        f"\nhighlight lag over {lag['words']} words: mean {lag['mean_ms']:.1f} ms, "
        f"p90 {lag['p90_ms']:.1f} ms, max {lag['max_ms']:.1f} ms "
        f"(a timeupdate-driven highlight: mean {lag['timeupdate_mean_ms']:.1f} ms, "
        f"max {lag['timeupdate_max_ms']:.1f} ms); job done in {finished_s:.1f} s"
    )
    (artifacts / "highlight-lag.json").write_text(json.dumps({**lag, "checked": checked}))
    # one frame is ~17 ms; a loaded CI machine can stall a frame now and then, so the
    # maximum is reported, not asserted (a timeupdate-driven highlight averages ~150 ms)
    assert lag["mean_ms"] < 75, lag
    assert lag["p90_ms"] < 150, lag

    # search the whole job's words
    box = driver.find_element(By.ID, "q")
    box.send_keys("clock")
    driver.find_element(By.CSS_SELECTOR, "#search button").click()
    hits = wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#hits li[data-chapter]"), 10, "hits"
    )

    # a screenshot of the player: a word lit mid-chapter, the search's hits
    lit_at(driver, times_ms[3] / 1000)
    driver.execute_script("document.querySelector('#text .w.on').scrollIntoView({block: 'center'})")
    ActionChains(driver).move_to_element(driver.find_element(By.CSS_SELECTOR, "h1")).perform()
    driver.save_screenshot(str(artifacts / "player.png"))

    # jump to a hit in another chapter, at its time
    other = [h for h in hits if h.get_attribute("data-chapter") != "2"]
    assert other, [h.text for h in hits]
    target_ms = int(other[0].get_attribute("data-ms"))
    target_chapter = other[0].get_attribute("data-chapter")
    other[0].click()
    wait_for(lambda: f"/chapters/{target_chapter}?t=" in driver.current_url, 10, "the jump")
    wait_for(
        lambda: driver.execute_script("return document.body.dataset.ready === '1'"), 30, "ready"
    )
    wait_for(
        lambda: (
            abs(
                driver.execute_script("return document.getElementById('audio').currentTime") * 1000
                - target_ms
            )
            < 300
        ),
        10,
        "the audio at the hit's time",
    )
