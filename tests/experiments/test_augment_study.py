"""The augmentation study's machinery on a reduced budget (the numbers come from the full run)."""

import json

from tests.conftest import run_cli
from workbench.experiments.augment import main


def test_quick_study_writes_tables_json_and_plot_resumes_and_spreads(tmp_path):
    out = tmp_path / "study"
    done = run_cli("experiment", "augment", "--quick", "--threads", "1", "--out", str(out),
                   timeout=600)  # fmt: skip
    summary = json.loads((out / "results.json").read_text())
    assert list(summary["arms"]) == [
        "natural only", "+ rendered", "+ SimGAN-refined", "+ SDEdit 0.5", "+ VAE", "+ GAN",
        "+ diffusion",
    ]  # fmt: skip
    for per_k in summary["arms"].values():
        assert set(per_k) == {"1"} and 0.0 <= per_k["1"]["mean"] <= 1.0
    cas = summary["cas"]
    assert set(cas) == {"real", "vae", "gan", "diffusion"} and len(cas["vae"]["per_class"]) == 10
    assert cas["vae"]["ratio_to_real"]["mean"] > 0
    assert set(summary["quality"]) == {
        "rendered", "SimGAN-refined", "SDEdit 0.5", "SDEdit 1", "vae (all labels)",
        "gan (all labels)", "diffusion (all labels)", "vae (k=1)", "gan (k=1)", "diffusion (k=1)",
    }  # fmt: skip
    assert set(summary["quality"]["SDEdit 0.5"]) == {"fid", "kid", "kid_std", "precision", "recall"}
    assert summary["elbo_natural_test"]["vae (all labels)"]["mean"] < 0
    sweep = summary["sdedit_sweep"]
    assert list(sweep) == ["0.5", "1"] and set(sweep["1"]) == {"fid", "faithfulness"}
    assert set(summary["targets"]) == {
        "cas_at_least_80_percent_of_real", "augmenters_improving_k1",
        "learned_augmenter_beats_rendered_k1", "gan_matches_vae_k1",
    }  # fmt: skip
    beats = summary["targets"]["learned_augmenter_beats_rendered_k1"]["per_augmenter"]
    assert [t["name"].split(" - ")[0] for t in beats] == [
        "+ SimGAN-refined", "+ SDEdit 0.5", "+ VAE", "+ GAN", "+ diffusion",
    ]  # fmt: skip
    assert "- + rendered" in (out / "results.md").read_text()
    table = (out / "results.md").read_text()
    assert "| k labels per class | natural only |" in table and table in done.stdout
    assert (out / "results.png").stat().st_size > 10_000
    for grid in (
        "samples_vae_kall",
        "samples_gan_kall",
        "samples_diffusion_kall",
        "samples_vae_k1",
        "samples_gan_k1",
        "samples_diffusion_k1",
        "refined",
    ):
        assert (out / f"{grid}.png").stat().st_size > 1000
    # the augmenters are datasets in the contract, with their provenance
    samples = json.loads((out / "samples" / "gan_k1_seed0" / "manifest.json").read_text())
    assert samples["complete"] and samples["generator"]["kind"] == "gan"
    refined = json.loads((out / "refined" / "seed0" / "manifest.json").read_text())
    assert refined["complete"] and refined["refined"]["source"].endswith("rendered")
    sdedit = json.loads((out / "sdedit" / "s0.5_seed0" / "manifest.json").read_text())
    assert sdedit["complete"] and sdedit["refined"]["refiner"]["strength"] == 0.5
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    # real, SimGAN refiner, SDEdit model, 3 generators at all labels and at k = 1
    assert len([p for p in stamps if p.suffix == ".ckpt"]) == 1 + 1 + 1 + 3 * 2
    assert main(out, quick=True) == 0  # in-process: only the resume is checked here
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # finished runs are not redone

    # the same units as Ray tasks on two workers (in two stages) give the same numbers
    spread = tmp_path / "spread"
    run_cli("experiment", "augment", "--quick", "--threads", "1", "--workers", "2",
            "--out", str(spread), timeout=600)  # fmt: skip
    parallel = json.loads((spread / "results.json").read_text())
    assert parallel["execution"] == {"workers": 2, "threads": 1}
    for key in ("arms", "cas", "quality", "elbo_natural_test", "differences", "sdedit_sweep"):
        assert parallel[key] == summary[key], key
