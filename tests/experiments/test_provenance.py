"""The provenance block that every study and benchmark JSON carries."""

import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from workbench.experiments import provenance
from workbench.experiments.common import render_scene
from workbench.experiments.provenance import Recorder
from workbench.experiments.sim2real import Study, StudyConfig
from workbench.render import gl

ROOT = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_block_names_this_checkout_command_host_versions_and_threads():
    block = Recorder(seeds=[0, 1, 2]).block(resumed=False)
    assert block["git"]["commit"] == _git(ROOT, "rev-parse", "HEAD").strip()
    assert block["git"]["dirty"] == bool(_git(ROOT, "status", "--porcelain").strip())
    assert block["argv"] == sys.argv
    assert block["packages"]["torch"] == metadata.version("torch")
    assert block["packages"]["pytorch-lightning"] == metadata.version("pytorch-lightning")
    assert block["packages"]["scikit-robot-pyrender"] == metadata.version("scikit-robot-pyrender")
    assert block["torch_threads"] == torch.get_num_threads()
    assert block["host"]["cpu_count"] == os.cpu_count()
    assert block["host"]["affinity"] == len(os.sched_getaffinity(0))
    cpuinfo = Path("/proc/cpuinfo").read_text()
    assert f": {block['host']['cpu_model']}\n" in cpuinfo
    assert block["seeds"] == [0, 1, 2] and block["resumed"] is False
    assert block["started_utc"].endswith("Z") and block["started_utc"] <= block["finished_utc"]
    json.dumps(block)  # it goes into a JSON file as it is


def test_dirty_flag_and_changed_paths_follow_the_working_tree(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", "a.py")
    _git(tmp_path, "commit", "-q", "-m", "a")
    clean = provenance.git_state(tmp_path)
    assert (
        clean["dirty"] is False and clean["commit"] == _git(tmp_path, "rev-parse", "HEAD").strip()
    )
    (tmp_path / "a.py").write_text("x = 2\n")
    (tmp_path / "new.py").write_text("")
    dirty = provenance.git_state(tmp_path)
    assert dirty["dirty"] is True and set(dirty["changed"]) == {"a.py", "new.py"}
    outside = provenance.git_state(tmp_path / "no-such-folder")
    assert outside["commit"] is None and outside["dirty"] is None and outside["error"]


def test_cpu_seconds_count_the_process_and_the_children_it_waited_for():
    recorder = Recorder()
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    start = time.process_time()
    while time.process_time() - start < 0.2:
        pass
    cpu = recorder.block()["cpu_s"]
    assert cpu["children"] >= 0.25  # the child's 0.3 s of CPU, whatever the machine's load
    assert cpu["process"] >= 0.15
    assert cpu["total"] == round(cpu["process"] + cpu["children"], 3)


def test_command_is_written_as_it_is_typed():
    argv = ["benchmarks/bench_render.py", "--out", "bench out"]
    assert provenance.command(argv) == "python benchmarks/bench_render.py --out 'bench out'"
    argv = ["/work/main/.venv/bin/workbench", "experiment", "sim2real", "--out", "o"]
    assert provenance.command(argv) == "workbench experiment sim2real --out o"


def test_versions_leave_out_missing_optional_packages_and_mark_missing_required_ones():
    versions = provenance.package_versions(("numpy", "no-such-package-x"), ("no-such-package-y",))
    assert versions == {"numpy": metadata.version("numpy"), "no-such-package-x": None}


def test_module_imports_nothing_heavy():
    code = (
        "import sys, workbench.experiments.provenance\n"
        "print([m for m in ('torch', 'numpy', 'pytorch_lightning', 'pyrender', 'OpenGL')"
        " if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_gl_renderers_reuse_the_render_probe_and_say_why_one_is_unavailable():
    found = provenance.gl_renderers(("egl", "nonsense"))
    assert found["egl"] == gl.probe("egl").renderer
    assert found["nonsense"].startswith("unavailable: ") and "unknown backend" in found["nonsense"]


def test_studies_record_the_renderer_of_their_dataset_and_whether_they_resumed(tmp_path):
    info = render_scene(ROOT / "scenes" / "digits.yaml", tmp_path / "ds", 2, resolution=16)
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert info == {
        "backend": manifest["renderer"]["backend"],
        "gl_renderer": manifest["renderer"]["gl_renderer"],
    }
    fresh = Study(tmp_path / "study", StudyConfig.quick())
    block = fresh._provenance()
    assert block["resumed"] is False and block["seeds"] == [0]
    (tmp_path / "study" / "runs" / "natural_k1_seed0.json").write_text("{}")
    assert Study(tmp_path / "study", StudyConfig.quick())._provenance()["resumed"] is True
