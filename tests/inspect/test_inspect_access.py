"""The app server's access guard on ASGI scopes: the token, its cookie, the Host and the Origin."""

from __future__ import annotations

import asyncio

import pytest

from workbench.inspect.access import AccessGuard, cookie_value, host_name

TOKEN = "right-token-0123456789"
HOST = "127.0.0.1:8501"


class Inner:
    """The guarded app: records whether a request reached it, answers 200."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.calls.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"the app"})


def call(guard: AccessGuard, path="/", query="", headers=(), kind="http", method="GET"):
    """Sends one request through ``guard``; returns (status or close code, headers, body)."""
    scope = {
        "type": kind, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "server": ("127.0.0.1", 8501), "scheme": "http" if kind == "http" else "ws",
    }  # fmt: skip
    if kind == "http":
        scope["method"] = method
    sent: list[dict] = []

    async def receive():
        return {"type": f"{kind}.request" if kind == "http" else "websocket.connect"}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    if not sent:
        return None, {}, b""
    if sent[0]["type"] == "websocket.close":
        return sent[0]["code"], {}, b""
    headers_out = {k.decode(): v.decode() for k, v in sent[0].get("headers", [])}
    return sent[0]["status"], headers_out, b"".join(m.get("body", b"") for m in sent[1:])


COOKIE = ("Cookie", f"other=1; workbench-app-8501={cookie_value(TOKEN)}")


@pytest.fixture
def inner() -> Inner:
    return Inner()


@pytest.fixture
def guard(inner) -> AccessGuard:
    return AccessGuard(inner, TOKEN)


def test_no_token_gets_the_refusal_page(guard, inner):
    for path in ("/", "/generate", "/_stcore/host-config", "/static/js/main.js", "/media/x.png"):
        status, headers, body = call(guard, path, headers=[("Host", HOST)])
        assert status == 403 and b"workbench app" in body and b"?token=" in body, path
        assert headers["content-type"].startswith("text/html")
    assert inner.calls == []


def test_wrong_token_is_refused(guard, inner):
    for query in ("token=wrong", "token=", f"token={TOKEN}x", f"token={TOKEN}&token=bad",
                  "token=%C3%A9t%C3%A9"):  # fmt: skip
        status, _, body = call(guard, query=query, headers=[("Host", HOST)])
        assert status == 403 and b"Access refused" in body, query
    assert inner.calls == []


def test_right_token_sets_a_strict_httponly_cookie_and_leaves_the_url(guard, inner):
    status, headers, _ = call(guard, "/attack", f"a=1&token={TOKEN}&b=2", [("Host", HOST)])
    assert status == 302 and headers["location"] == "/attack?a=1&b=2"
    name, _, rest = headers["set-cookie"].partition("=")
    value, *flags = [part.strip() for part in rest.split(";")]
    assert name == "workbench-app-8501" and value == cookie_value(TOKEN) and TOKEN not in value
    assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(flags)
    assert inner.calls == []
    status, _, body = call(guard, "/attack", headers=[("Host", HOST), COOKIE])
    assert status == 200 and body == b"the app" and inner.calls == ["http"]


def test_redirect_never_leaves_the_site(guard):
    _, headers, _ = call(guard, "//evil.example/x", f"token={TOKEN}", [("Host", HOST)])
    assert headers["location"] == "/evil.example/x"


def test_cookie_of_another_port_or_forged_value_is_refused(guard, inner):
    for cookie in (f"workbench-app-8502={cookie_value(TOKEN)}", f"workbench-app-8501={TOKEN}",
                   f"workbench-app-8501={cookie_value('another-token-0123456')}"):  # fmt: skip
        status, _, _ = call(guard, headers=[("Host", HOST), ("Cookie", cookie)])
        assert status == 403, cookie
    assert inner.calls == []


def test_token_in_the_query_lets_a_post_through_without_redirect(guard, inner):
    status, _, _ = call(guard, "/x", f"token={TOKEN}", [("Host", HOST)], method="PUT")
    assert status == 200 and inner.calls == ["http"]


@pytest.mark.parametrize(
    "host",
    ["evil.example", "evil.example:8501", "127.0.0.1.evil.example", "localhost.evil.example",
     "127.0.0.1:8501@evil.example", "127.0.0.1:99999", "", "192.168.1.7:8501", "0.0.0.0:8501"],
)  # fmt: skip
def test_a_foreign_host_header_is_refused_even_with_token_and_cookie(guard, inner, host):
    status, _, body = call(guard, query=f"token={TOKEN}", headers=[("Host", host), COOKIE])
    assert status == 403 and b"Host header not allowed" in body
    status, _, _ = call(guard, "/_stcore/health", headers=[("Host", host)])
    assert status == 403
    assert inner.calls == []


def test_missing_or_doubled_host_is_refused(guard, inner):
    assert call(guard, headers=[COOKIE])[0] == 403
    assert call(guard, headers=[("Host", HOST), ("Host", "evil.example"), COOKIE])[0] == 403
    assert inner.calls == []


@pytest.mark.parametrize("host", ["localhost:8501", "LOCALHOST.", "[::1]:8501", "127.0.0.2", HOST])
def test_loopback_hosts_pass(guard, inner, host):
    assert call(guard, headers=[("Host", host), COOKIE])[0] == 200


def test_the_bound_host_passes_and_wildcards_take_addresses_not_names(inner):
    named = AccessGuard(inner, TOKEN, bind="box.lan")
    assert call(named, headers=[("Host", "box.lan:8501"), COOKIE])[0] == 200
    assert call(named, headers=[("Host", "192.168.1.7:8501"), COOKIE])[0] == 403
    wildcard = AccessGuard(inner, TOKEN, bind="0.0.0.0")
    assert call(wildcard, headers=[("Host", "192.168.1.7:8501"), COOKIE])[0] == 200
    assert call(wildcard, headers=[("Host", "[fe80::1]:8501"), COOKIE])[0] == 200
    assert call(wildcard, headers=[("Host", "evil.example:8501"), COOKIE])[0] == 403


def test_websocket_needs_the_cookie_and_its_own_origin(guard, inner):
    stream = "/_stcore/stream"
    own = ("Origin", f"http://{HOST}")
    assert call(guard, stream, headers=[("Host", HOST), own], kind="websocket")[0] == 1008
    for origin in ("http://evil.example", "http://localhost:9999", "null", f"https://{HOST}x"):
        code, _, _ = call(guard, stream, headers=[("Host", HOST), ("Origin", origin), COOKIE],
                          kind="websocket")  # fmt: skip
        assert code == 1008, origin
    assert call(guard, stream, headers=[("Host", HOST), COOKIE], kind="websocket")[0] == 1008
    evil_host = [("Host", "evil.example:8501"), ("Origin", "http://evil.example:8501"), COOKIE]
    assert call(guard, stream, headers=evil_host, kind="websocket")[0] == 1008
    assert inner.calls == []
    assert call(guard, stream, headers=[("Host", HOST), own, COOKIE], kind="websocket")[0] is None
    assert inner.calls == ["websocket"]


def test_cross_origin_http_is_refused_even_with_the_cookie(guard, inner):
    upload = "/_stcore/upload_file/session/file"
    headers = [("Host", HOST), ("Origin", "http://localhost:9999"), COOKIE]
    status, _, body = call(guard, upload, headers=headers, method="PUT")
    assert status == 403 and b"cross-origin" in body and inner.calls == []
    own = [("Host", HOST), ("Origin", f"http://{HOST}"), COOKIE]
    assert call(guard, upload, headers=own, method="PUT")[0] == 200


def test_health_alone_answers_without_token(guard, inner):
    assert call(guard, "/_stcore/health", headers=[("Host", HOST)])[0] == 200
    assert call(guard, "/_stcore/health", headers=[("Host", HOST)], method="POST")[0] == 403
    assert call(guard, "/_stcore/health/", headers=[("Host", HOST)])[0] == 403
    assert call(guard, "/_stcore/script-health-check", headers=[("Host", HOST)])[0] == 403
    assert inner.calls == ["http"]


def test_lifespan_passes_through(guard, inner):
    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        pass

    asyncio.run(guard({"type": "lifespan"}, receive, send))
    assert inner.calls == ["lifespan"]


def test_short_tokens_and_host_parsing():
    with pytest.raises(ValueError, match="16 characters"):
        AccessGuard(Inner(), "short")
    assert host_name("[::1]:8501") == "::1" and host_name("Example.COM.:80") == "example.com"
    assert host_name("a@b") is None and host_name("h:port") is None and host_name("h/x") is None
