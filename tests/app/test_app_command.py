"""``workbench app``: serves on 127.0.0.1 unless ``--host`` says otherwise; bad options are one
line."""

from __future__ import annotations

import os

import psutil
import pytest

from tests.app.server import free_port, start_app, stop_app
from tests.conftest import run_cli
from workbench.imageio import UPLOAD_MAX_MB
from workbench.resources import app_dir


def test_app_listens_on_localhost_only(tmp_path):
    port = free_port()
    app = start_app(tmp_path, port)
    proc = app.proc
    try:
        family = {
            p.pid for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(True)]
        }
        listening = [
            c.laddr
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        ]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
        owners = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port}
        assert owners & family
    finally:
        stop_app(app)


def test_bad_options_are_one_line(tmp_path):
    done = run_cli("app", "--data-root", str(tmp_path / "missing"), check=False)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--data-root" in done.stderr
    done = run_cli("app", "--data-root", str(tmp_path), "--port", "70000", check=False)
    assert done.returncode == 2 and "--port" in done.stderr


def test_other_addresses_only_when_asked(tmp_path):
    from workbench.cli import build_parser
    from workbench.commands.app import command

    def address(*extra: str) -> str:
        argv = command(build_parser().parse_args(["app", "--data-root", str(tmp_path), *extra]))
        return argv[argv.index("--server.address") + 1]

    assert address() == "127.0.0.1"
    assert address("--host", "0.0.0.0") == "0.0.0.0"


class Exec(Exception):
    """Stands in for ``os.execve``: the server is not started."""


def test_start_line_warning_and_the_servers_environment(tmp_path, monkeypatch, capsys):
    from workbench.cli import build_parser
    from workbench.commands import app

    started: dict = {}

    def execve(path, argv, env):
        started.update(argv=argv, env=env)
        raise Exec

    monkeypatch.setattr(app.os, "execve", execve)
    monkeypatch.setattr(app.os, "chdir", lambda folder: started.update(cwd=folder))
    monkeypatch.setenv("STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION", "false")
    monkeypatch.delenv("WORKBENCH_APP_TOKEN", raising=False)

    def start(*extra: str) -> tuple[str, str]:
        with pytest.raises(Exec):
            app.run(build_parser().parse_args(["app", "--data-root", str(tmp_path), *extra]))
        done = capsys.readouterr()
        return done.out, done.err

    out, err = start()
    token = started["env"]["WORKBENCH_APP_TOKEN"]
    assert out == f"workbench app: http://127.0.0.1:8501/?token={token}  (data root {tmp_path})\n"
    assert err == "" and len(token) >= 40
    assert started["env"]["WORKBENCH_APP_PID"] == str(os.getpid())
    assert started["env"]["WORKBENCH_DATA_ROOT"] == str(tmp_path)
    assert not [key for key in started["env"] if key.startswith("STREAMLIT_")]
    assert started["cwd"] == app_dir()
    argv = started["argv"]
    forced = [("--server.enableXsrfProtection", "true"), ("--server.enableCORS", "true"),
              ("--global.developmentMode", "false"), ("--server.address", "127.0.0.1"),
              ("--server.maxUploadSize", str(UPLOAD_MAX_MB))]  # fmt: skip
    for flag, value in forced:
        assert argv[argv.index(flag) + 1] == value
    assert token not in " ".join(argv)
    start()
    assert started["env"]["WORKBENCH_APP_TOKEN"] != token  # random each time
    for host in ("localhost", "::1", "127.0.0.2"):
        assert start("--host", host)[1] == "", host
    for host in ("0.0.0.0", "192.168.1.7", "box.lan"):
        out, err = start("--host", host)
        assert "warning" in err and host in err and err.count("\n") == 1, host
    assert "http://127.0.0.1:8501/?token=" in start("--host", "0.0.0.0")[0]
    assert "http://[::1]:8501/?token=" in start("--host", "::1")[0]
    monkeypatch.setenv("WORKBENCH_APP_TOKEN", "from-the-environment-1234")
    start()
    assert started["env"]["WORKBENCH_APP_TOKEN"] == "from-the-environment-1234"
    start("--token", "from-the-command-line-123")
    assert started["env"]["WORKBENCH_APP_TOKEN"] == "from-the-command-line-123"


def test_a_short_token_is_one_line(tmp_path):
    done = run_cli("app", "--data-root", str(tmp_path), "--token", "secret", check=False)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--token" in done.stderr and "16 characters" in done.stderr
