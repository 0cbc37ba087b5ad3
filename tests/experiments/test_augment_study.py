"""The augmentation study's machinery on a reduced budget (the numbers come from the full run)."""

import json

from tests.conftest import run_cli
from workbench.experiments.augment import main


def test_quick_study_writes_tables_json_and_plot_resumes_and_spreads(tmp_path):
    out = tmp_path / "study"
    done = run_cli("experiment", "augment", "--quick", "--threads", "1", "--out", str(out),
                   timeout=600)  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["arms"]) == ["natural only", "+ rendered", "+ refined", "+ VAE", "+ GAN"]
    for per_k in summary["arms"].values():
        assert set(per_k) == {"1"} and 0.0 <= per_k["1"]["mean"] <= 1.0
    cas = summary["cas"]
    assert set(cas) == {"real", "vae", "gan"} and len(cas["vae"]["per_class"]) == 10
    assert cas["vae"]["ratio_to_real"]["mean"] > 0
    assert set(summary["quality"]) == {
        "rendered", "refined", "vae (all labels)", "gan (all labels)", "vae (k=1)", "gan (k=1)",
    }  # fmt: skip
    assert set(summary["quality"]["refined"]) == {"fid", "kid", "kid_std", "precision", "recall"}
    assert summary["elbo_natural_test"]["vae (all labels)"]["mean"] < 0
    assert set(summary["targets"]) == {"cas_at_least_80_percent_of_real", "augmenters_improving_k1"}
    table = (out / "results.md").read_text()
    assert "| k labels per class | natural only |" in table and table in done.stdout
    assert (out / "results.png").stat().st_size > 10_000
    for grid in (
        "samples_vae_kall",
        "samples_gan_kall",
        "samples_vae_k1",
        "samples_gan_k1",
        "refined",
    ):
        assert (out / f"{grid}.png").stat().st_size > 1000
    # the augmenters are datasets in the contract, with their provenance
    samples = json.loads((out / "samples" / "gan_k1_seed0" / "manifest.json").read_text())
    assert samples["complete"] and samples["generator"]["kind"] == "gan"
    refined = json.loads((out / "refined" / "seed0" / "manifest.json").read_text())
    assert refined["complete"] and refined["refined"]["source"].endswith("rendered")
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert len([p for p in stamps if p.suffix == ".ckpt"]) == 1 + 1 + 2 + 2  # real, refiner, 2x2
    assert main(out, quick=True) == 0  # in-process: only the resume is checked here
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not redone

    # the same units as Ray tasks on two workers (in two stages) give the same numbers
    spread = tmp_path / "spread"
    run_cli("experiment", "augment", "--quick", "--threads", "1", "--workers", "2",
            "--out", str(spread), timeout=600)  # fmt: skip
    parallel = json.loads((spread / "results.json").read_text())
    assert parallel["execution"] == {"workers": 2, "threads": 1}
    for key in ("arms", "cas", "quality", "elbo_natural_test", "differences"):
        assert parallel[key] == summary[key], key
