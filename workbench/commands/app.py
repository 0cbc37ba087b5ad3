"""``workbench app``: starts the Streamlit app behind a token, on 127.0.0.1 unless ``--host``.

The server runs the app's ``serve.py`` (in :func:`workbench.resources.app_dir`, shipped with the
package), which wraps the app in :class:`workbench.inspect.access.AccessGuard`. It starts from
the app's own folder with no ``STREAMLIT_*`` variables, and the options that guard it are passed
as flags, which win over any ``config.toml``: so a ``.streamlit/config.toml`` where the command
is started, or the variables of the shell, cannot turn XSRF or CORS protection off.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

from workbench.errors import WorkbenchError
from workbench.inspect.access import (
    HOST_ENV,
    MIN_TOKEN_LENGTH,
    TOKEN_ENV,
    TOKEN_PARAM,
    WILDCARDS,
    is_loopback,
)
from workbench.resources import app_dir

HELP = "start the Streamlit app over a data root (localhost only unless --host is given)"
PID_ENV = "WORKBENCH_APP_PID"
ROOT_ENV = "WORKBENCH_DATA_ROOT"
# Flags that guard the server; flags win over every config.toml (and we pass no STREAMLIT_*).
GUARDS = [
    "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
    "--global.developmentMode", "false", "--server.enableAgentApi", "false",
    "--server.enableStaticServing", "false", "--server.baseUrlPath", "",
    "--server.headless", "true", "--logger.hideWelcomeMessage", "true",
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds this command's options."""
    parser.add_argument(
        "--data-root", default=".", help="folder the app may read and write (default: .)"
    )
    parser.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else exposes the app to the network)",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"access token (default: ${TOKEN_ENV}, else a random one); visible to `ps`, so "
        "prefer the variable",
    )


def command(args: argparse.Namespace) -> list[str]:
    """Returns the ``streamlit run`` command line for ``args``.

    Raises:
        WorkbenchError: the data root is no folder, the port is out of range, or the app's files
            are missing.
    """
    root = Path(args.data_root).expanduser().resolve()
    if not root.is_dir():
        raise WorkbenchError(f"--data-root: {args.data_root} is not a folder")
    if not 1 <= args.port <= 65535:
        raise WorkbenchError(f"--port: must lie in [1, 65535], got {args.port}")
    script = app_dir() / "serve.py"
    if not script.is_file():
        raise WorkbenchError(f"{script}: the app's files are missing; reinstall workbench")
    from workbench.imageio import UPLOAD_MAX_MB  # PIL only; the server refuses larger requests

    return [
        sys.executable, "-P", "-m", "streamlit", "run", str(script),
        "--server.address", args.host, "--server.port", str(args.port), *GUARDS,
        "--server.maxUploadSize", str(UPLOAD_MAX_MB),
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
        "--", "--data-root", str(root),
    ]  # fmt: skip


def access_token(args: argparse.Namespace) -> str:
    """The token: ``--token``, else $WORKBENCH_APP_TOKEN, else a random one.

    Raises:
        WorkbenchError: the token given is too short to be safe.
    """
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
    if token is None:
        return secrets.token_urlsafe(32)
    if len(token) < MIN_TOKEN_LENGTH:
        raise WorkbenchError(
            f"--token (or ${TOKEN_ENV}): needs at least {MIN_TOKEN_LENGTH} characters; leave it "
            "out for a random one"
        )
    return token


def url(host: str, port: int, token: str) -> str:
    """The URL that opens the app, token included (a wildcard address shows as 127.0.0.1)."""
    shown = "127.0.0.1" if host in WILDCARDS else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?{TOKEN_PARAM}={quote(token, safe='')}"


def environment(root: str, token: str, host: str) -> dict[str, str]:
    """The server's environment: this one less every ``STREAMLIT_*`` variable, plus the data root,
    the token and bound host (for the app's ``serve.py``) and the server's pid (for its jobs)."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith("STREAMLIT_")}
    return {
        **kept, ROOT_ENV: root, TOKEN_ENV: token, HOST_ENV: host, PID_ENV: str(os.getpid()),
    }  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Replaces this process with the Streamlit server (so signals reach it directly)."""
    if importlib.util.find_spec("streamlit") is None:
        raise WorkbenchError("the app needs Streamlit: pip install -e '.[app]'")
    argv = command(args)
    token = access_token(args)
    if not is_loopback(args.host.strip("[]").lower()):
        print(
            f"workbench app: warning: bound to {args.host}, so anyone who can reach this machine "
            "and learns the URL can read and write the data root and run jobs; keep the URL "
            "secret, and prefer the default 127.0.0.1 with an SSH tunnel",
            file=sys.stderr,
            flush=True,
        )
    print(f"workbench app: {url(args.host, args.port, token)}  (data root {argv[-1]})", flush=True)
    env = environment(argv[-1], token, args.host)
    os.chdir(app_dir())  # no .streamlit/config.toml of the caller's folder
    os.execve(sys.executable, argv, env)
