"""``workbench app``: starts the Streamlit app, bound to 127.0.0.1 unless ``--host`` says else."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from workbench.errors import WorkbenchError

HELP = "start the Streamlit app over a data root (localhost only unless --host is given)"
APP = Path(__file__).resolve().parent.parent.parent / "app" / "main.py"


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
    if not APP.is_file():
        raise WorkbenchError(f"{APP}: the app's files are missing; install from a source checkout")
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", args.host, "--server.port", str(args.port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer",
        "--", "--data-root", str(root),
    ]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Replaces this process with the Streamlit server (so signals reach it directly)."""
    if importlib.util.find_spec("streamlit") is None:
        raise WorkbenchError("the app needs Streamlit: pip install -e '.[app]'")
    argv = command(args)
    print(f"workbench app: http://{args.host}:{args.port}  (data root {argv[-1]})", flush=True)
    os.execve(sys.executable, argv, {**os.environ, "WORKBENCH_DATA_ROOT": argv[-1]})
