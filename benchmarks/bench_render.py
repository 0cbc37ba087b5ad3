"""Rendering benchmark: every anchor side by side in one run; prints ratios and writes JSON.

* end-to-end (all modalities encoded and written) against the bare pyrender loop (build the
  same scenes, render RGB + depth, nothing else), at 64, 128 and 256 pixels;
* 2 workers against 1 (whole ``workbench render`` commands);
* EGL against OSMesa;
* peak RSS of a render at 1k and 5k samples (flat memory means these match);
* amodal labels on against off (``amodal`` in the spec): end-to-end street scenes, alternated
  in blocks in one process, and the sample JSON's size.

Each target is one measurement, decided by its value (``workbench.experiments.stats``); the
JSON carries a ``provenance`` block (commit, command, host, versions, both GL renderers).

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

from workbench.experiments import stats
from workbench.experiments.provenance import Recorder, gl_renderers

ROOT = Path(__file__).resolve().parent.parent
LOOP_TARGET, WORKERS_TARGET, MEMORY_GROWTH = 0.7, 1.7, 1.1


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


def _amodal_cost(resolution: int, count: int, blocks: int) -> dict:
    """End-to-end street samples per second with amodal labels on and off (alternated blocks
    of ``count`` in one fresh process, EGL) and the mean sample JSON size of each."""
    code = f"""
import json, time
from workbench.render import gl
gl.activate("egl")
from workbench.render.sample import render_sample
from workbench.render.view import Renderer
from workbench.scene.spec import parse_spec
specs = {{flag: parse_spec({{"kind": "street", "resolution": {resolution}, "amodal": flag}})
          for flag in (True, False)}}
r = Renderer({resolution}, {resolution})
for flag in (True, False):
    render_sample(r, specs[flag], 0, 0)
seconds, sizes = {{True: 0.0, False: 0.0}}, {{True: [], False: []}}
for block in range({blocks}):
    for flag in ((True, False) if block % 2 == 0 else (False, True)):
        t = time.perf_counter()
        for i in range({count}):
            meta = render_sample(r, specs[flag], 0, block * {count} + i).meta
            sizes[flag].append(len(json.dumps(meta)))
        seconds[flag] += time.perf_counter() - t
n = {blocks} * {count}
print(json.dumps({{"on": n / seconds[True], "off": n / seconds[False],
                  "json_bytes_on": sum(sizes[True]) / n, "json_bytes_off": sum(sizes[False]) / n}}))
"""
    env = {**os.environ, "LP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=env
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "resolution": resolution, "samples": blocks * count,
            "slowdown": result["off"] / result["on"]}  # fmt: skip


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
    recorder = Recorder(seeds={"render": 0}, gl=gl_renderers(("egl", "osmesa")))
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

    amodal = _amodal_cost(128, 10 if args.quick else 50, 2 if args.quick else 4)
    results["amodal"] = amodal
    print(
        f"amodal labels: street 128px end-to-end {amodal['on']:.1f}/s on, {amodal['off']:.1f}/s "
        f"off ({amodal['slowdown']:.2f}x); sample JSON {amodal['json_bytes_on']:.0f} vs "
        f"{amodal['json_bytes_off']:.0f} bytes"
    )

    results["targets"] = targets(results)
    results["provenance"] = recorder.block()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "render.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'render.json'}")


def _target(name: str, value: float, threshold: float, direction: str = ">=") -> dict:
    return {"name": name, "difference": False, **stats.decide([value], threshold, direction)}


def targets(results: dict) -> list[dict]:
    """End-to-end at least 0.7 of the bare loop per scene and size, 2 workers at least 1.7x
    one, and flat memory (the largest render's peak RSS within 10% of the smallest's); each
    one measurement, decided by its value."""
    out = [
        _target(f"end-to-end / bare loop, {row['kind']} {row['resolution']} px", row["ratio"],
                LOOP_TARGET)
        for row in results["loop"]
    ]  # fmt: skip
    out.append(_target("2 workers / 1 worker", results["workers"]["speedup"], WORKERS_TARGET))
    peaks = [m["peak_rss_mib"] for m in results["memory"].values()]
    out.append(
        _target("peak RSS, largest / smallest render", max(peaks) / min(peaks), MEMORY_GROWTH, "<=")
    )
    return out


def markdown(results: dict) -> str:
    """The README's rendering tables, from ``render.json``."""
    decided = {t["name"]: t for t in targets(results)}
    lines = [
        (
            "End-to-end (scene randomization, all passes, labels, conditions, PNG/NPY/JSON "
            "encoding, files written with sha256) against the bare pyrender loop of the same "
            "scenes (build the pyrender scene, render RGB + depth, nothing else), one process, "
            "one llvmpipe thread, EGL:"
        ),
        "",
        (
            f"| scene | pixels | bare loop (samples/s) | end-to-end (samples/s) | ratio | "
            f"target >= {LOOP_TARGET} |"
        ),
        "|---|---|---|---|---|---|",
    ]
    for row in results["loop"]:
        decision = decided[f"end-to-end / bare loop, {row['kind']} {row['resolution']} px"]
        lines.append(
            f"| {row['kind']} | {row['resolution']} | {row['bare']:.1f} | {row['full']:.1f} | "
            f"{row['ratio']:.2f} | {stats.verdict(decision)} |"
        )
    workers, backends = results["workers"], results["backends"]
    memory = results["memory"]
    sizes = sorted(memory, key=int)
    speedup = decided["2 workers / 1 worker"]
    flat = decided["peak RSS, largest / smallest render"]
    lines += [
        "",
        "| anchor | result | target | decision |",
        "|---|---|---|---|",
        (
            f"| `workbench render digits --num {workers['samples']} --resolution 128`, 2 workers "
            f"against 1 (whole commands) | {workers['one_s']:.1f} s vs {workers['two_s']:.1f} s: "
            f"**{workers['speedup']:.2f}x** | >= {WORKERS_TARGET}x | {stats.verdict(speedup)} |"
        ),
        (
            f"| EGL against OSMesa, end-to-end digits at 128 px | {backends['egl']['full']:.1f} vs "
            f"{backends['osmesa']['full']:.1f} samples/s: **{backends['egl_over_osmesa']:.1f}x** | "
            "measured | |"
        ),
        "| peak RSS (process tree) of a 1-worker render of "
        + " and ".join(sizes)
        + " digits at 64 px | "
        + " and ".join(f"{memory[k]['peak_rss_mib']:.0f}" for k in sizes)
        + f" MiB | flat (largest within {100 * (MEMORY_GROWTH - 1):.0f}% of smallest) | "
        f"{stats.verdict(flat)} |",
        *_amodal_row(results.get("amodal")),
        "",
        f"Decisions: {stats.RULE_POINT}.",
    ]
    return "\n".join(lines) + "\n"


def _amodal_row(amodal: dict | None) -> list[str]:
    """The table row of the amodal labels' cost (none for a run that predates them)."""
    if amodal is None:
        return []
    return [
        f"| amodal labels on against off, end-to-end street scenes at {amodal['resolution']} px "
        f"({amodal['samples']} each, alternated) | {amodal['on']:.1f} vs {amodal['off']:.1f} "
        f"samples/s: **{amodal['slowdown']:.2f}x** the time; sample JSON "
        f"{amodal['json_bytes_on']:.0f} vs {amodal['json_bytes_off']:.0f} bytes | measured | |"
    ]


if __name__ == "__main__":
    main()
