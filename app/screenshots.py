"""Screenshots of the app's main pages for the README, taken in headless Chromium.

    python app/screenshots.py --data-root DIR [--vae CKPT] [--classifier CKPT] [--report DIR]

starts ``workbench app`` on DIR, visits every page (typing the given paths, relative to DIR, into
the pages' path fields and pressing Attack on the attack lab) and writes
``docs/screenshots/<page>.png``. Uses Debian's Chromium through Playwright; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync"]  # fmt: skip
WAIT = 180_000  # milliseconds


def _serve(root: Path, port: int, token: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "app",
         "--data-root", str(root), "--port", str(port)],
        cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "WORKBENCH_APP_TOKEN": token},
    )  # fmt: skip
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit("the app did not start")


def _type_path(page: Page, label: str, value: str | None) -> None:
    if value:
        field = page.get_by_role("textbox", name=f"{label}: another path under the data root")
        field.fill(value)
        field.press("Enter")


def _settle(page: Page, seconds: float = 2.0) -> None:
    """Waits until Streamlit stops running the script, then a little longer for images."""
    page.wait_for_timeout(500)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT)
    page.wait_for_timeout(seconds * 1000)


def _attack(page: Page, classifier: str | None) -> None:
    _type_path(page, "Classifier checkpoint", classifier)
    _settle(page)
    page.get_by_role("button", name="Attack", exact=True).click()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--vae", help="VAE or GAN checkpoint for the Augmenters page")
    parser.add_argument("--classifier", help="classifier checkpoint for the Attack lab")
    parser.add_argument("--report", help="evaluation folder for the Robustness page")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args.out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(16)
    server = _serve(args.data_root.resolve(), port, token)
    try:
        with sync_playwright() as driver, tempfile.TemporaryDirectory() as profile:
            browser = driver.chromium.launch_persistent_context(
                profile, executable_path=args.chromium, args=FLAGS, headless=True,
                viewport={"width": 1400, "height": 1500},
            )  # fmt: skip
            page = browser.new_page()
            url = f"http://127.0.0.1:{port}"
            page.goto(f"{url}/?token={token}", timeout=WAIT)  # the access cookie for every page
            shots = {
                "generate": lambda: None,
                "browse": lambda: None,
                "augmenters": lambda: _type_path(page, "Checkpoint", args.vae),
                "attack": lambda: _attack(page, args.classifier),
                "training": lambda: None,
                "robustness": lambda: _type_path(page, "Evaluation folder", args.report),
            }
            for name, act in shots.items():
                page.goto(f"{url}/{'' if name == 'generate' else name}", timeout=WAIT)
                page.get_by_role("heading").first.wait_for(timeout=WAIT)
                _settle(page)
                act()
                _settle(page, 3.0)
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                print(args.out / f"{name}.png")
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
