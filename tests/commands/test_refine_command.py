"""``workbench refine``: a refined copy of a rendered dataset; bad input in one line."""

import pytest

from tests.conftest import run_cli
from tests.generative.tiny_models import fit_tiny
from workbench.cli import main
from workbench.data.reader import open_dataset


@pytest.fixture(scope="module")
def refiners(rendered_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    sources = [
        {"kind": "rendered", "path": str(rendered_dir), "name": "rendered"},
        {"kind": "digits", "name": "natural"},
    ]
    return {size: fit_tiny("refiner", folder / f"r{size}.ckpt", size, sources) for size in (32, 16)}


def test_refine_writes_a_labelled_copy(rendered_dir, refiners, tmp_path):
    out = tmp_path / "refined"
    done = run_cli("refine", "--ckpt", str(refiners[32]), "--data", str(rendered_dir),
                   "--out", str(out), "--quiet")  # fmt: skip
    refined, original = open_dataset(out), open_dataset(rendered_dir)
    assert str(out) in done.stdout and refined.verify() == []
    assert refined.labels() == original.labels()
    assert refined.manifest["refined"]["refiner"]["sha256"]
    assert refined[0]["rgb"].shape == original[0]["rgb"].shape
    assert (refined[0]["seg"] == original[0]["seg"]).all()


def test_bad_input_is_one_line(rendered_dir, refiners, tmp_path, capsys):
    def error(*args):
        # in-process: the same dispatch and error handling as the command, without a new Python
        assert main(["refine", "--out", str(tmp_path / "x"), "--quiet", *args]) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: "), stderr
        return stderr

    assert "images are 32 x 32 but the refiner was trained on 16 x 16" in error(
        "--ckpt", str(refiners[16]), "--data", str(rendered_dir)
    )
    vae = fit_tiny("vae", tmp_path / "vae.ckpt")
    assert "a vae checkpoint; this needs a refiner or diffusion checkpoint" in error(
        "--ckpt", str(vae), "--data", str(rendered_dir)
    )
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(refiners[32].read_bytes()[:5000])
    assert "not a readable checkpoint" in error(
        "--ckpt", str(truncated), "--data", str(rendered_dir)
    )
    assert "not a workbench dataset" in error("--ckpt", str(refiners[32]), "--data", str(tmp_path))


@pytest.fixture(scope="module")
def diffusion(tmp_path_factory):
    return fit_tiny("diffusion", tmp_path_factory.mktemp("ckpt") / "diffusion.ckpt", 32)


def test_sdedit_changes_only_the_images_and_repeats_for_a_seed(rendered_dir, diffusion, tmp_path):
    def refine(out, *extra):
        args = ["refine", "--ckpt", str(diffusion), "--data", str(rendered_dir), "--out",
                str(out), "--strength", "0.5", "--quiet", *extra]  # fmt: skip
        assert main(args) == 0
        return open_dataset(out)

    refined, original = refine(tmp_path / "a", "--conditioned"), open_dataset(rendered_dir)
    assert refined.verify() == [] and refined.labels() == original.labels()
    record = refined.manifest["refined"]["refiner"]
    assert record["kind"] == "diffusion" and record["strength"] == 0.5 and record["conditioned"]
    for index in (0, len(original) - 1):
        new, old = refined[index], original[index]
        assert new["rgb"].shape == old["rgb"].shape and not (new["rgb"] == old["rgb"]).all()
        assert (new["seg"] == old["seg"]).all() and (new["inst"] == old["inst"]).all()
        assert (new["depth"] == old["depth"]).all() and new["meta"] == old["meta"]
    again = refine(tmp_path / "b", "--conditioned")
    assert all((again[i]["rgb"] == refined[i]["rgb"]).all() for i in range(len(again)))
    other = refine(tmp_path / "c", "--conditioned", "--seed", "1")
    assert not all((other[i]["rgb"] == refined[i]["rgb"]).all() for i in range(len(other)))


def test_bad_sdedit_input_is_one_line(rendered_dir, refiners, diffusion, tmp_path, capsys):
    def error(*args):
        assert main(["refine", "--out", str(tmp_path / "x"), "--quiet", *args]) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: "), stderr
        return stderr

    data = ["--data", str(rendered_dir)]
    assert "a diffusion model refines by SDEdit; give --strength in (0, 1]" in error(
        "--ckpt", str(diffusion), *data
    )
    for strength in ("0", "1.5", "-0.2"):
        assert "--strength: must lie in (0, 1]" in error(
            "--ckpt", str(diffusion), *data, "--strength", strength
        )
    assert "--guidance: the guidance scale must be 0 or more" in error(
        "--ckpt", str(diffusion), *data, "--strength", "0.3", "--guidance", "-1"
    )
    assert "--steps: DDIM steps must lie in [1, 20]" in error(
        "--ckpt", str(diffusion), *data, "--strength", "0.3", "--steps", "21"
    )
    assert "--strength: options of a diffusion refiner" in error(
        "--ckpt", str(refiners[32]), *data, "--strength", "0.3"
    )
    small = fit_tiny("diffusion", tmp_path / "small.ckpt", 16)
    assert "images are 32 x 32 but the refiner was trained on 16 x 16" in error(
        "--ckpt", str(small), *data, "--strength", "0.3"
    )
    assert not (tmp_path / "x").exists()
