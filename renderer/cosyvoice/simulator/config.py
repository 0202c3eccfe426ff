"""The simulator's switches (``narrate simulate cosyvoice --help`` shows the same)."""

from __future__ import annotations

from dataclasses import dataclass

#: fault kinds: transient ones a client must retry, and one fatal (arrears)
FAULTS = ("throttle", "internal", "arrears", "drop", "slow", "truncate")
TRANSIENT_FAULTS = ("throttle", "internal", "drop", "truncate")


@dataclass(frozen=True)
class SimulatorConfig:
    #: require this key; None accepts any non-empty key (§10.1)
    api_key: str | None = None
    region: str = "beijing"
    #: new tasks per ``rate_window_s`` per key, counted at arrival (§5.3); 0 = no limit
    rate_limit: int = 3
    rate_window_s: float = 1.0
    #: "task": a task-failed Throttling.RateQuota; "handshake": HTTP 429 (§10.9)
    throttle_mode: str = "task"
    #: each run-task is counted (and answered) after a random 0..this many seconds (seeded):
    #: a provider whose front door stamps arrivals late, as this simulator does itself on a
    #: busy machine (its event loop runs late; ``loop_lag_ms_max`` in /stats)
    arrival_jitter_s: float = 0.0
    #: fault kinds drawn for a task picked to fail; picked with ``fail_rate`` (seeded)
    faults: tuple[str, ...] = ()
    fail_rate: float = 0.0
    seed: int = 0
    #: fail every task whose text contains this marker with the first fault kind
    fault_marker: str | None = None
    #: first-packet latency of every task, and of a task hit by the "slow" fault
    first_packet_s: float = 0.0
    slow_first_packet_s: float = 3.0
    #: seconds of work per second of audio (0: as fast as possible)
    rtf: float = 0.0
    text_gap_timeout_s: float = 23.0
    idle_timeout_s: float = 60.0
    #: where words go: "sentence-end" (default), "task-finished" or "both" (§4)
    timestamps: str = "sentence-end"
    #: "cumulative" task times (default) or "sentence"-relative times (§4)
    time_base: str = "cumulative"
    #: token ordinals counted over the task ("cumulative") or per "sentence"
    index_base: str = "cumulative"
    #: send usage and request_uuid in task-finished (live runs saw neither, §2.3)
    finished_usage: bool = True
    #: the per-sentence audio cap seen in the field (§11)
    sentence_cap_ms: int = 33_440
    #: audio per binary frame
    chunk_ms: int = 200
    #: how long a new voice stays DEPLOYING
    voice_ready_s: float = 0.2
    voice_quota: int = 1000
