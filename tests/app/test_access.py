"""Access control of a real ``workbench app``, tried as an attacker would: no token, a wrong one,
a forged Host header, a websocket from elsewhere, DNS rebinding in Chromium, and a folder and
shell that try to turn XSRF and CORS protection off.

One server serves the whole module. It is started from a folder whose ``.streamlit/config.toml``
turns XSRF and CORS protection off, with ``STREAMLIT_*`` variables that turn them off too (and
development mode on), so every test here also runs against that hostile set-up.
"""

from __future__ import annotations

import http.client
import os

import psutil
import pytest

from tests.app.server import chromium_context, free_port, start_app, stop_app
from workbench.resources import app_dir

HOSTILE_CONFIG = """
[server]
enableXsrfProtection = false
enableCORS = false
enableStaticServing = true
"""


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """The folder the server is started from; it gets the server's output in ``server.log``."""
    return tmp_path_factory.mktemp("start")


@pytest.fixture(scope="module")
def server(tmp_path_factory, start):
    """The app, started from a hostile folder with hostile ``STREAMLIT_*`` variables."""
    (start / ".streamlit").mkdir()
    (start / ".streamlit" / "config.toml").write_text(HOSTILE_CONFIG)
    env = {
        **os.environ,
        "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false",
        "STREAMLIT_SERVER_ENABLE_CORS": "false",
        "STREAMLIT_GLOBAL_DEVELOPMENT_MODE": "true",
    }
    root = tmp_path_factory.mktemp("root")
    app = start_app(root, free_port(), env=env, cwd=start, output=start / "server.log")
    yield app
    stop_app(app)


def request(server, path: str, headers: dict | None = None, method: str = "GET", body=None):
    """One plain HTTP request (no redirect followed, no proxy); returns (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest(method, path, skip_host="Host" in (headers or {}))
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def login(server) -> str:
    """The ``Cookie`` header a browser holds after opening the URL with the token."""
    status, headers, _ = request(server, f"/?token={server.token}")
    assert status == 302
    return headers["Set-Cookie"].split(";")[0]


def test_no_token_or_a_wrong_one_is_refused(server):
    paths = ["/", "/?token=wrong", f"/?token={server.token[:-1]}", "/_stcore/host-config",
             "/_stcore/metrics", "/static/index.html", "/media/x.png", "/app/static/x"]  # fmt: skip
    for path in paths:
        status, _, body = request(server, path)
        assert status == 403 and b"Access refused" in body and b"workbench app" in body, path
    cookie = f"workbench-app-{server.port}={server.token}"  # the token is not the cookie
    assert request(server, "/", {"Cookie": cookie})[0] == 403


def test_the_right_token_sets_a_cookie_that_opens_the_app(server):
    status, headers, _ = request(server, f"/?token={server.token}")
    assert status == 302 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and server.token not in cookie
    status, _, body = request(server, "/", {"Cookie": cookie.split(";")[0]})
    assert status == 200 and b'<div id="root">' in body


def test_a_forged_host_header_is_refused(server):
    cookie = login(server)
    for host in ("evil.example", f"evil.example:{server.port}", f"127.0.0.1.nip.io:{server.port}"):
        status, _, body = request(server, f"/?token={server.token}", {"Host": host})
        assert status == 403 and b"Host header not allowed" in body, host
        status, _, _ = request(server, "/", {"Host": host, "Cookie": cookie})
        assert status == 403, host
    assert request(server, "/", {"Host": f"localhost:{server.port}", "Cookie": cookie})[0] == 200


def test_websocket_needs_the_cookie_and_its_own_origin(server):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    url = f"ws://127.0.0.1:{server.port}/_stcore/stream"
    own = f"http://127.0.0.1:{server.port}"
    cookie = login(server)
    other_port = f"http://localhost:{server.port + 1}"
    tries = [
        (own, {}),
        ("http://evil.example", {"Cookie": cookie}),
        (other_port, {"Cookie": cookie}),
    ]
    for origin, headers in tries:
        with pytest.raises(InvalidStatus) as refused:
            connect(url, origin=origin, additional_headers=headers, proxy=None).close()
        assert refused.value.response.status_code == 403, origin
    with connect(url, origin=own, additional_headers={"Cookie": cookie}, proxy=None,
                 subprotocols=["streamlit"]) as socket:  # fmt: skip
        assert socket.subprotocol == "streamlit"


def test_xsrf_and_cors_protection_stay_on(server):
    cookie = login(server)
    own = f"http://127.0.0.1:{server.port}"
    status, _, body = request(
        server, "/_stcore/upload_file/session/file", {"Cookie": cookie, "Origin": own,
        "Content-Type": "application/octet-stream"}, "PUT", b"data",
    )  # fmt: skip
    assert status == 403 and b"XSRF" in body  # no X-Xsrftoken header: XSRF protection is on
    status, headers, body = request(server, "/_stcore/health")
    assert status == 200 and body == b"ok"
    assert "_streamlit_xsrf=" in headers.get("Set-Cookie", "")  # set only with XSRF on
    assert "Access-Control-Allow-Origin" not in headers  # "*" with CORS off


def test_server_runs_from_the_app_folder_without_streamlit_variables(server):
    proc = psutil.Process(server.proc.pid)
    env = proc.environ()
    assert env["WORKBENCH_APP_PID"] == str(server.proc.pid)
    assert not [key for key in env if key.startswith("STREAMLIT_")]
    assert proc.cwd() == str(app_dir())


def test_chromium_needs_the_token_and_refuses_dns_rebinding(server, tmp_path):
    rebinding = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    with chromium_context(tmp_path / "profile", rebinding) as browser:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.port}/", timeout=120_000)
        assert "Open the URL that workbench app printed" in page.inner_text("body")
        evil = page.goto(f"http://evil.example:{server.port}/?token={server.token}")
        assert evil.status == 403 and "Host header not allowed" in page.inner_text("body")
        page.goto(server.url, timeout=120_000)
        assert page.url == f"http://127.0.0.1:{server.port}/"  # the token left the URL
        page.get_by_text("Training").first.wait_for(timeout=120_000)
        page.get_by_text("Data root:").first.wait_for(timeout=60_000)


def test_the_token_is_printed_once_and_logged_nowhere_else(server, start):
    login(server)
    request(server, "/?token=wrong")
    log = (start / "server.log").read_text()
    lines = [line for line in log.splitlines() if server.token in line]
    assert len(lines) == 1 and lines[0].startswith("workbench app: http://127.0.0.1:"), lines
