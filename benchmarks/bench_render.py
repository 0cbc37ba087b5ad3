"""Rendering benchmark: every anchor side by side in one run; prints ratios and writes JSON.

* end-to-end (all modalities encoded and written) against the bare pyrender loop (build the
  same scenes, render RGB + depth, nothing else), at 64, 128 and 256 pixels;
* 2 workers against 1 (whole ``workbench render`` commands);
* EGL against OSMesa;
* peak RSS of a render at 1k and 5k samples (flat memory means these match).

Usage: python benchmarks/bench_render.py --out bench_out [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def _in_process(kind: str, resolution: int, count: int, backend: str) -> dict:
    """Bare loop and end-to-end loop in one fresh process (so the GL backend can differ)."""
    code = f"""
import json, tempfile, time
from workbench.render import gl
gl.activate({backend!r})
from workbench.data.writer import write_shard
from workbench.render.sample import render_sample
from workbench.render.view import Renderer
from workbench.scene.kinds import build_scene
from workbench.scene.spec import parse_spec
spec = parse_spec({{"kind": {kind!r}, "resolution": {resolution}}})
r = Renderer({resolution}, {resolution})
for i in range(5):
    render_sample(r, spec, 1, i)
t = time.perf_counter()
for i in range({count}):
    r.render_color(build_scene(spec, 0, i))
bare = {count} / (time.perf_counter() - t)
with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    write_shard(d, 0, 0, (render_sample(r, spec, 0, i) for i in range({count})))
    full = {count} / (time.perf_counter() - t)
print(json.dumps({{"bare": bare, "full": full}}))
"""
    env = {**os.environ, "LP_NUM_THREADS": "1"}  # as in render workers
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _render_cli(args: list[str]) -> tuple[float, float]:
    """Runs ``workbench render``; returns wall seconds and its process tree's peak RSS (MiB)."""
    out = Path(tempfile.mkdtemp(prefix="bench-"))
    cmd = [
        sys.executable,
        "-m",
        "workbench.cli",
        "render",
        *args,
        "--out",
        str(out / "ds"),
        "--quiet",
    ]
    start = time.perf_counter()
    proc = psutil.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    peak = 0.0
    stop = threading.Event()

    def watch():
        nonlocal peak
        while not stop.is_set():
            try:
                tree = [proc, *proc.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    code = proc.wait()
    stop.set()
    thread.join()
    seconds = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    if code != 0:
        raise RuntimeError(f"render failed: {' '.join(cmd)}")
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_out")
    parser.add_argument(
        "--quick", action="store_true", help="fewer samples (a smoke run, noisy numbers)"
    )
    args = parser.parse_args()
    n = 40 if args.quick else 200
    results: dict = {
        "cpu_count": os.cpu_count(),
        "loop": [],
        "workers": {},
        "backends": {},
        "memory": {},
    }

    print("end-to-end vs bare pyrender loop (samples/s, one process, EGL)")
    for kind in ("digits", "shapes"):
        for resolution in (64, 128, 256):
            r = _in_process(kind, resolution, n, "egl")
            row = {"kind": kind, "resolution": resolution, **r, "ratio": r["full"] / r["bare"]}
            results["loop"].append(row)
            print(
                f"  {kind:7s} {resolution:4d}px  bare {r['bare']:7.1f}  "
                f"end-to-end {r['full']:7.1f}  "
                f"ratio {row['ratio']:.2f}"
            )

    count = 300 if args.quick else 3000
    common = ["digits", "--num", str(count), "--resolution", "128"]
    one, _ = _render_cli([*common, "--workers", "1"])
    two, _ = _render_cli([*common, "--workers", "2"])
    results["workers"] = {"samples": count, "one_s": one, "two_s": two, "speedup": one / two}
    print(
        f"workers: {count} digits at 128px: 1 worker {one:.1f}s, 2 workers {two:.1f}s, "
        f"speedup {one / two:.2f}x"
    )

    backend_n = 20 if args.quick else 100
    r_egl = _in_process("digits", 128, backend_n, "egl")
    r_osm = _in_process("digits", 128, backend_n, "osmesa")
    results["backends"] = {
        "egl": r_egl,
        "osmesa": r_osm,
        "egl_over_osmesa": r_egl["full"] / r_osm["full"],
    }
    print(
        f"backends: end-to-end digits 128px: EGL {r_egl['full']:.1f}/s, "
        f"OSMesa {r_osm['full']:.1f}/s, "
        f"EGL {r_egl['full'] / r_osm['full']:.1f}x faster"
    )

    for samples in (200, 1000) if args.quick else (1000, 5000):
        seconds, peak = _render_cli(
            ["digits", "--num", str(samples), "--resolution", "64", "--workers", "1"]
        )
        results["memory"][str(samples)] = {"peak_rss_mib": peak, "seconds": seconds}
        print(
            f"memory: {samples} samples at 64px, 1 worker: peak RSS {peak:.0f} MiB ({seconds:.0f}s)"
        )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "render.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'render.json'}")


if __name__ == "__main__":
    main()
