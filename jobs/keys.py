"""Every Redis key name narrate uses, in one place.

One module so that a reader (or an operator with ``redis-cli --scan``) can see all of
narrate's keys at once and no two features pick clashing names. Every key starts with
:data:`PREFIX`; the Celery broker's own keys are Celery's and are not listed here.

Keys of one provider account carry the account in braces (a Redis Cluster hash tag), so
all of them land in one cluster slot and one Lua script may touch them together.
Account ids are engine name plus a hash of the credentials ("cosyvoice/3f2a..."), never a
secret, so they may appear in key names.
"""

from __future__ import annotations

from typing import NamedTuple

#: the namespace of every narrate key
PREFIX = "narrate:"
#: the provider throttle's keys: ``narrate:throttle:{<account>}:<part>``
THROTTLE_PREFIX = f"{PREFIX}throttle:"


class ThrottleKeys(NamedTuple):
    """The keys of one account's throttle, in the order the Lua scripts take them."""

    #: ZSET ticket -> when its request was settled (server ms): the sliding log
    grants: str
    #: ZSET ticket -> priority class * 1e13 + first-enqueue ms: the waiting room
    wait: str
    #: ZSET ticket -> lease expiry (server ms): waiters that still poll
    lease: str
    #: STRING server ms until which every request waits: a provider's pause, or the span
    #: after the grant log was found lost
    blocked_until: str
    #: STRING server ms of the last poll, with a TTL far longer than a span: while it exists
    #: the grant log is complete; once it is gone, the keys were lost (a restart without
    #: persistence, FLUSHDB) or the account was idle, and the next poll waits a span
    marker: str
    #: ZSET ticket -> the ms its flight runs out: requests granted and not yet settled
    #: (sent, the provider's answer not yet back); each counts as arriving "now"
    in_flight: str
    #: HASH ``ms`` (the account's adapted margin) and ``clean`` (settles since it changed)
    margin: str


def throttle_tag(account: str) -> str:
    """``{<account>}``: the hash tag shared by one account's keys.

    Why it refuses braces: Redis Cluster hashes the text between the first ``{`` and the
    next ``}``, so a brace inside the account would silently change which part is hashed.
    """
    if not account or "{" in account or "}" in account:
        raise ValueError(f"an account id must be non-empty and brace-free: {account!r}")
    return "{" + account + "}"


def throttle_key(account: str, part: str) -> str:
    """``narrate:throttle:{<account>}:<part>``."""
    return f"{THROTTLE_PREFIX}{throttle_tag(account)}:{part}"


def throttle_keys(account: str) -> ThrottleKeys:
    """All keys of ``account``'s throttle."""
    return ThrottleKeys(*(throttle_key(account, part) for part in ThrottleKeys._fields))


def throttle_pattern(account_glob: str = "*") -> str:
    """A ``SCAN MATCH`` pattern for throttle keys (tests and operators clean up with it)."""
    return f"{THROTTLE_PREFIX}{{{account_glob}}}:*"
