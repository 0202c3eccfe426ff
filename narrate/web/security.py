"""The web page's security model, in one place.

* **Where it listens.** Loopback (127.0.0.1, ::1, localhost) by default. Any other address
  needs ``NARRATE_SERVE_TOKEN`` (:func:`check_exposure` refuses to start without one).
* **Who may ask.** With a token, every route but the login form and its stylesheet needs
  it: the API takes ``Authorization: Bearer <token>``; a browser logs in once with a form
  that sets an HttpOnly, SameSite=Strict cookie holding a value derived from the token (an
  HMAC, so the cookie is not the token). Tokens are compared in constant time.
* **Forged requests.** Everything that changes state is a POST carrying a CSRF token (form
  action ``?csrf=``, or the ``X-CSRF-Token`` header the page's script sends), an HMAC of
  this process's random secret and the session; requests with a bearer token need none.
  Bound to loopback, only ``Host: localhost/127.0.0.1/[::1]`` is served (DNS rebinding).
* **What is shown.** Secrets from the environment (``DASHSCOPE_API_KEY``, the serve token,
  any ``*_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, a database URL's password)
  are replaced by ``***`` in every page and API answer (:class:`Redactor`); errors are
  messages, never tracebacks.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from narrate.errors import ConfigurationError

#: the session cookie's name
COOKIE = "narrate_session"
#: the header and query parameter that carry the CSRF token
CSRF_HEADER = "x-csrf-token"
CSRF_PARAM = "csrf"
#: the shortest token accepted (a guessable one protects nothing)
MIN_TOKEN_CHARS = 16
LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, or with a weak one."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigurationError(
            f"NARRATE_SERVE_TOKEN is too short: {len(token)} characters, "
            f"at least {MIN_TOKEN_CHARS} are needed",
            hint="e.g. NARRATE_SERVE_TOKEN=$(python3 -c "
            "'import secrets; print(secrets.token_urlsafe(24))')",
        )
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"refusing to serve on {host} without a token: anyone who can reach it could "
            "submit, cancel and download jobs",
            hint="set NARRATE_SERVE_TOKEN (16+ characters; every request must then carry it), "
            "or serve on 127.0.0.1 (the default)",
        )


@dataclass(frozen=True)
class Guard:
    """Authentication and CSRF checks of one server process."""

    token: str | None
    #: this process's secret for CSRF tokens (random: a restart asks for a page reload)
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    #: Host header values served (None: any, when a token guards every request)
    allowed_hosts: frozenset[str] | None = None

    @classmethod
    def for_host(cls, host: str, token: str | None) -> Guard:
        allowed = None
        if is_loopback(host):
            allowed = frozenset({"localhost", "127.0.0.1", "[::1]", "::1", host.lower()})
        return cls(token=token, allowed_hosts=allowed)

    @property
    def enabled(self) -> bool:
        """Whether requests need the token."""
        return self.token is not None

    def session_value(self) -> str:
        """The cookie a logged-in browser holds: derived from the token, never the token."""
        assert self.token is not None
        return hmac.new(self.token.encode(), b"narrate-serve-session", hashlib.sha256).hexdigest()

    def token_matches(self, offered: str) -> bool:
        if self.token is None:
            return False
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def bearer_ok(self, headers: Mapping[str, str]) -> bool:
        scheme, _space, value = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value.strip())

    def cookie_ok(self, cookies: Mapping[str, str]) -> bool:
        if self.token is None:
            return False
        return hmac.compare_digest(cookies.get(COOKIE, "").encode(), self.session_value().encode())

    def csrf_token(self, cookies: Mapping[str, str]) -> str:
        """The CSRF token of this session (of the anonymous one before a login)."""
        session = cookies.get(COOKIE, "") if self.cookie_ok(cookies) else "anonymous"
        return hmac.new(self.secret, f"csrf:{session}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, offered: str, cookies: Mapping[str, str]) -> bool:
        return bool(offered) and hmac.compare_digest(
            offered.encode(), self.csrf_token(cookies).encode()
        )

    def host_ok(self, host_header: str) -> bool:
        if self.allowed_hosts is None:
            return True
        host = host_header.lower()
        if host.startswith("["):  # [::1]:8000
            host = host[: host.find("]") + 1]
        elif host.count(":") == 1:
            host = host.split(":", 1)[0]
        return host in self.allowed_hosts


#: environment variables whose values are secrets, besides the patterns below
_SECRET_NAMES = ("DASHSCOPE_API_KEY", "NARRATE_SERVE_TOKEN")
_SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSWD")
#: shorter values are not redacted (they would mangle ordinary words)
_MIN_SECRET_CHARS = 6


@dataclass(frozen=True)
class Redactor:
    """Replaces known secret values by ``***`` in text about to be shown."""

    secrets: tuple[str, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *extra: str | None) -> Redactor:
        env = os.environ if env is None else env
        values = [
            value
            for name, value in env.items()
            if name in _SECRET_NAMES or name.upper().endswith(_SECRET_SUFFIXES)
        ]
        values += [v for v in extra if v]
        for name in ("NARRATE_DATABASE_URL", "NARRATE_BROKER_URL", "NARRATE_THROTTLE_URL"):
            password = _url_password(env.get(name, ""))
            if password:
                values.append(password)
        kept = {v for v in values if len(v) >= _MIN_SECRET_CHARS}
        # longest first, so a secret containing another is replaced whole
        return cls(tuple(sorted(kept, key=len, reverse=True)))

    def __call__(self, text: str) -> str:
        for value in self.secrets:
            if value in text:
                text = text.replace(value, "***")
            escaped = json.dumps(value)[1:-1]
            if escaped != value and escaped in text:
                text = text.replace(escaped, "***")
        return text


def _url_password(url: str) -> str | None:
    if "://" not in url or "@" not in url:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return None
    return str(password) if password else None
