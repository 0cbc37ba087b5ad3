"""``workbench app``: serves on 127.0.0.1 unless ``--host`` says otherwise; bad options are one
line."""

from __future__ import annotations

import psutil

from tests.app.server import free_port, start_app, stop_app
from tests.conftest import run_cli


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
