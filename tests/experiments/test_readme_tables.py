"""The README's result tables are generated from docs/results and checked against them."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "results"


def _load_publish():
    spec = importlib.util.spec_from_file_location("publish", ROOT / "benchmarks" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["publish"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


publish = _load_publish()


def _region(text: str, name: str) -> str:
    return publish.regions(text)[name]


def _copy_results(tmp_path: Path) -> Path:
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    return results


def test_every_readme_table_equals_what_its_json_renders():
    assert publish.check(README.read_text(), RESULTS) == []


def test_the_adversarial_training_region_says_what_its_json_says():
    data = json.loads((RESULTS / "adversarial_training.json").read_text())
    region = _region(README.read_text(), "adversarial-training")
    standard, pgd = data["arms"]["standard"]["clean"], data["arms"]["pgd"]["clean"]
    assert f"{100 * standard:.2f} -> {100 * pgd:.2f}" in region  # 99.44 -> 99.16
    assert "99.16 -> 98.89" not in README.read_text()


def test_a_changed_number_in_the_readme_is_caught(tmp_path):
    text = README.read_text()
    body = _region(text, "sim2real")
    row = next(line for line in body.splitlines() if line.startswith("| 1 |"))
    edited = text.replace(row, row.replace("| 1 | ", "| 1 | 9", 1))
    assert edited != text
    assert publish.check(edited, RESULTS) == ["sim2real"]
    readme = tmp_path / "README.md"
    readme.write_text(edited)
    assert publish.main(["--check", "--readme", str(readme), "--results", str(RESULTS)]) == 1


def test_a_changed_number_in_a_json_is_caught_and_rewritten(tmp_path):
    results = _copy_results(tmp_path)
    data = json.loads((results / "attacks.json").read_text())
    data["clean_acc"] = 0.5
    (results / "attacks.json").write_text(json.dumps(data))
    text = README.read_text()
    assert publish.check(text, results) == ["attacks"]
    rewritten = publish.rewrite(text, results)
    assert "clean 50.0%" in _region(rewritten, "attacks")
    assert publish.check(rewritten, results) == []
    # only the generated region changed
    outside = text.split("<!-- results:attacks -->")[0]
    assert rewritten.startswith(outside)


def test_a_missing_json_renders_as_not_published_and_a_stray_region_is_refused(tmp_path):
    results = _copy_results(tmp_path)
    (results / "attacks.json").unlink()
    assert "Not published yet" in publish.render_region("attacks", results)
    text = README.read_text()
    with pytest.raises(WorkbenchError, match="unknown results region nonsense"):
        publish.regions(text + "\n<!-- results:nonsense -->\nx\n<!-- /results:nonsense -->\n")
    without = text.replace("<!-- /results:attacks -->", "")
    with pytest.raises(WorkbenchError, match="attacks"):
        publish.regions(without)


def _bench_out(tmp_path: Path, provenance: dict | None) -> Path:
    """A bench_out holding the committed attacks.json, with ``provenance`` when given."""
    out = tmp_path / "bench_out"
    out.mkdir()
    data = json.loads((RESULTS / "attacks.json").read_text())
    data["clean_acc"] = 0.75
    data.pop("provenance", None)
    if provenance is not None:
        data["provenance"] = provenance
    (out / "attacks.json").write_text(json.dumps(data))
    return out


def _provenance(argv: list[str], load: float = 0.0) -> dict:
    """A real provenance block for ``argv``, as if the run started at 1-minute load ``load``."""
    from workbench.experiments.provenance import Recorder

    block = {**Recorder(seeds=[0]).block(), "argv": argv, "command": " ".join(argv)}
    block["load_average"] = {"start": [load, load, load], "end": [load, load, load]}
    return block


def test_publish_refuses_outputs_without_provenance_or_from_quick_runs(tmp_path):
    results = _copy_results(tmp_path)
    before = (results / "attacks.json").read_bytes()
    out = _bench_out(tmp_path, None)
    with pytest.raises(WorkbenchError, match="no provenance block"):
        publish.publish(out, results)
    quick = tmp_path / "quick"
    quick.mkdir()
    shutil.copy(out / "attacks.json", quick / "attacks.json")
    data = json.loads((quick / "attacks.json").read_text())
    data["provenance"] = _provenance(["benchmarks/bench_attacks.py", "--quick"])
    (quick / "attacks.json").write_text(json.dumps(data))
    with pytest.raises(WorkbenchError, match="--quick run"):
        publish.publish(quick, results)
    assert (results / "attacks.json").read_bytes() == before  # nothing copied


def test_publish_refuses_timings_from_a_busy_machine(tmp_path):
    results = _copy_results(tmp_path)
    before = (results / "attacks.json").read_bytes()
    argv = ["benchmarks/bench_attacks.py", "--out", "bench_out"]
    busy = _bench_out(tmp_path, _provenance(argv, load=99.0))
    with pytest.raises(WorkbenchError, match=r"timed on a busy machine \(load 99.0 at the start"):
        publish.publish(busy, results)
    assert (results / "attacks.json").read_bytes() == before  # nothing copied
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    data = json.loads((busy / "attacks.json").read_text())
    data["provenance"] = _provenance(argv, load=0.5)
    (quiet / "attacks.json").write_text(json.dumps(data))
    assert publish.publish(quiet, results)  # half a CPU of other work on two or more is quiet


def test_provenance_records_the_load_at_the_start_and_the_end():
    from workbench.experiments.provenance import Recorder

    load = Recorder().block()["load_average"]
    assert len(load["start"]) == len(load["end"]) == 3
    assert all(value >= 0 for value in load["start"] + load["end"])


def test_publish_from_bench_out_copies_and_regenerates_the_readme(tmp_path):
    results = _copy_results(tmp_path)
    out = _bench_out(tmp_path, _provenance(["benchmarks/bench_attacks.py", "--out", "bench_out"]))
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text())
    args = ["--from", str(out), "--readme", str(readme), "--results", str(results)]
    assert publish.main(args) == 0
    assert json.loads((results / "attacks.json").read_text())["clean_acc"] == 0.75
    region = _region(readme.read_text(), "attacks")
    assert "clean 75.0%" in region
    assert "Source: `docs/results/attacks.json`: `benchmarks/bench_attacks.py --out bench_out`" in (
        region
    )
    assert "produced before provenance was recorded" not in region
    assert publish.main(["--check", "--readme", str(readme), "--results", str(results)]) == 0
