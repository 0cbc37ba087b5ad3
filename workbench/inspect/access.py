"""Who may use the app's server: a token in the style of Jupyter's, the Host header and the Origin.

:class:`AccessGuard` is a pure ASGI middleware, so it sees every HTTP request and every websocket
before the server does (pages, ``/_stcore/stream``, uploads, media, static files). A request
passes when all of these hold:

- its Host header names an allowed host (loopback, or the address the server was bound to), which
  defeats DNS rebinding: a page served from ``evil.example`` that rebinds the name to 127.0.0.1
  still sends ``Host: evil.example``;
- an Origin header, if it has one (a websocket must have one), is the server's own origin;
- it carries the token: ``?token=`` (a GET or HEAD is then redirected to the same URL without it,
  with an HttpOnly, SameSite=Strict cookie set) or that cookie.

Only ``GET /_stcore/health`` passes without the token: it answers "ok" and nothing else, and the
tests and scripts poll it to learn that the server is up.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_ENV = "WORKBENCH_APP_TOKEN"
HOST_ENV = "WORKBENCH_APP_HOST"
TOKEN_PARAM = "token"
MIN_TOKEN_LENGTH = 16
WILDCARDS = frozenset({"0.0.0.0", "::", ""})
OPEN_PATHS = frozenset({"/_stcore/health"})
PASS = "pass"
REDIRECT = "redirect"
NO_TOKEN = "no valid token"
PAGE = (
    b"<!doctype html><meta charset=utf-8><title>workbench: access refused</title>"
    b"<h1>Access refused</h1><p>Open the URL that <code>workbench app</code> printed when it "
    b"started: it ends in <code>?token=&hellip;</code>.</p>"
)


def host_name(header: str) -> str | None:
    """The host name of a Host header or URL netloc (``"[::1]:8501"`` -> ``"::1"``), lower case and
    without a trailing dot; None when it is malformed (user info, a path, a bad port)."""
    try:
        parts = urlsplit(f"//{header}")
        name, _ = parts.hostname, parts.port  # .port raises ValueError on a bad port
    except ValueError:
        return None
    if not name or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return name.rstrip(".")


def is_loopback(name: str) -> bool:
    """Whether ``name`` (a host name or address) means this machine's loopback interface."""
    try:
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def cookie_value(token: str) -> str:
    """The cookie that stands for ``token`` (an HMAC of it, so the cookie never holds the token)."""
    return hmac.new(token.encode(), b"workbench app access", hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


class AccessGuard:
    """ASGI middleware that refuses requests without the token, from a foreign Host or Origin.

    Args:
        app: the ASGI application to guard.
        token: the access token (printed once, in the URL, when the server starts).
        bind: the address the server is bound to. Host headers may name it or loopback; when it
            is a wildcard (``0.0.0.0``, ``::``), any IP address too (a rebinding attack needs a
            name, never an address).
    """

    def __init__(self, app: ASGIApp, token: str, bind: str = "127.0.0.1") -> None:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the access token must have at least {MIN_TOKEN_LENGTH} characters")
        self.app = app
        self.token = token
        self.cookie = cookie_value(token)
        self.bind = bind.strip("[]").lower()

    def host_allowed(self, name: str) -> bool:
        """Whether a request may name ``name`` (from its Host header) as the server."""
        if is_loopback(name) or name == self.bind:
            return True
        if self.bind in WILDCARDS:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        verdict = self.verdict(scope)
        if verdict == PASS:
            await self.app(scope, receive, send)
            return
        if verdict == REDIRECT:
            await self._redirect(scope, send)
            return
        logger.info("refused %s %s: %s", scope["type"], scope.get("path", ""), verdict)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
        elif verdict.startswith(NO_TOKEN):
            await _respond(send, 403, [(b"content-type", b"text/html; charset=utf-8")], PAGE)
        else:
            await _respond(send, 403, [(b"content-type", b"text/plain")], verdict.encode())

    def verdict(self, scope: Scope) -> str:
        """What to do with an HTTP or websocket ``scope``: :data:`PASS`, :data:`REDIRECT` (it
        passes once the token has left the URL) or else the one-line reason to refuse it."""
        headers = _headers(scope)
        hosts = headers.get("host", [])
        name = host_name(hosts[0]) if len(hosts) == 1 else None
        if name is None or not self.host_allowed(name):
            return "Host header not allowed: open the app at the URL that workbench app printed"
        origins = headers.get("origin", [])
        if scope["type"] == "websocket" and not origins:
            return "cross-origin request refused: a websocket needs an Origin header"
        if origins and (len(origins) > 1 or not _same_origin(origins[0], hosts[0])):
            return "cross-origin request refused"
        if scope["path"] in OPEN_PATHS and scope.get("method") in ("GET", "HEAD"):
            return PASS
        given = [value for key, value in _query(scope) if key == TOKEN_PARAM]
        if given:
            if not all(_same(value, self.token) for value in given):
                return f"{NO_TOKEN}: wrong token"
            if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
                return REDIRECT
            return PASS
        if any(_same(value, self.cookie) for value in _cookies(headers, self.cookie_name(scope))):
            return PASS
        return f"{NO_TOKEN}: neither ?token= nor the cookie"

    def cookie_name(self, scope: Scope) -> str:
        """The cookie's name; it names the port, as browsers share cookies between ports."""
        server = scope.get("server")
        return f"workbench-app-{server[1]}" if server else "workbench-app"

    async def _redirect(self, scope: Scope, send: Send) -> None:
        """Sets the cookie and redirects to the same path and query, less the token."""
        path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        path = "/" + path.lstrip("/")  # "//evil.example/" would leave the site
        rest = urlencode([(k, v) for k, v in _query(scope) if k != TOKEN_PARAM])
        secure = "; Secure" if scope.get("scheme") in ("https", "wss") else ""
        cookie = f"{self.cookie_name(scope)}={self.cookie}; Path=/; HttpOnly; SameSite=Strict"
        headers = [
            (b"location", (path + (f"?{rest}" if rest else "")).encode("latin-1")),
            (b"set-cookie", (cookie + secure).encode()),
        ]
        await _respond(send, 302, headers, b"")


def _headers(scope: Scope) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in scope.get("headers", []):
        found.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return found


def _query(scope: Scope) -> list[tuple[str, str]]:
    return parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def _cookies(headers: dict[str, list[str]], name: str) -> Iterable[str]:
    for header in headers.get("cookie", []):
        for pair in header.split(";"):
            key, _, value = pair.strip().partition("=")
            if key == name:
                yield value.strip().strip('"')


def _same_origin(origin: str, host: str) -> bool:
    """Whether an Origin header (``http://127.0.0.1:8501``) names the same host and port as the
    Host header (``127.0.0.1:8501``)."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


async def _respond(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    headers = [*headers, (b"cache-control", b"no-store"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
