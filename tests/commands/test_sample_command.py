"""``workbench sample``: a labelled dataset from a VAE or GAN checkpoint; bad input in one line."""

import pytest

from tests.conftest import run_cli
from tests.generative.tiny_models import fit_tiny
from workbench.cli import main
from workbench.data.reader import open_dataset


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    return {kind: fit_tiny(kind, folder / f"{kind}.ckpt") for kind in ("vae", "gan")}


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_sample_writes_the_chosen_classes_with_a_grid(checkpoints, kind, tmp_path, capsys):
    out = tmp_path / "samples"
    args = ["sample", "--ckpt", str(checkpoints[kind]), "--num", "12", "--out", str(out),
            "--classes", "7,2", "--grid", "--quiet"]  # fmt: skip
    if kind == "vae":  # the real command once; in-process otherwise
        stdout = run_cli(*args).stdout
    else:
        assert main(args) == 0
        stdout = capsys.readouterr().out
    ds = open_dataset(out)
    assert len(ds) == 12 and ds.labels() == [7, 2] * 6 and ds.verify() == []
    assert (
        ds.manifest["generator"]["kind"] == kind and len(ds.manifest["generator"]["sha256"]) == 64
    )
    assert ds[0]["rgb"].shape == (8, 8, 3)
    assert (out / "samples.png").stat().st_size > 1000
    assert str(out) in stdout


def test_bad_input_is_one_line(checkpoints, tmp_path, capsys):
    def error(*args):
        # in-process: the same dispatch and error handling as the command, without a new Python
        assert main(["sample", "--num", "4", "--out", str(tmp_path / "x"), "--quiet", *args]) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: "), stderr
        return stderr

    assert "'11' is not a class the generator was trained on" in error(
        "--ckpt", str(checkpoints["vae"]), "--classes", "3,11"
    )
    truncated = tmp_path / "cut.ckpt"
    truncated.write_bytes(checkpoints["gan"].read_bytes()[:5000])
    assert "not a readable checkpoint" in error("--ckpt", str(truncated))
    refiner = fit_tiny("refiner", tmp_path / "refiner.ckpt", sources=[
        {"kind": "digits", "name": "natural"}, {"kind": "digits", "name": "rendered"}])  # fmt: skip
    assert "a refiner checkpoint; this needs a vae, gan or diffusion checkpoint" in error(
        "--ckpt", str(refiner)
    )
    assert "no such checkpoint" in error("--ckpt", str(tmp_path / "missing.ckpt"))


def test_diffusion_samples_record_their_steps_and_guidance(tmp_path, capsys):
    checkpoint = fit_tiny("diffusion", tmp_path / "diffusion.ckpt")
    out = tmp_path / "samples"
    args = ["sample", "--ckpt", str(checkpoint), "--num", "6", "--out", str(out), "--quiet",
            "--steps", "3", "--guidance", "1.5"]  # fmt: skip
    assert main(args) == 0
    ds = open_dataset(out)
    assert len(ds) == 6 and ds.labels() == list(range(6)) and ds.verify() == []
    generator = ds.manifest["generator"]
    assert generator["kind"] == "diffusion"
    assert (generator["steps"], generator["guidance"]) == (3, 1.5)
    capsys.readouterr()
    # resuming with other sampling settings would mix two sets in one folder: refused
    assert main([*args[:-1], "2.0"]) == 2
    assert "holds another dataset (differs in generator (guidance))" in capsys.readouterr().err


def test_bad_diffusion_options_are_one_line(checkpoints, tmp_path, capsys):
    diffusion = fit_tiny("diffusion", tmp_path / "diffusion.ckpt")

    def error(*args):
        assert main(["sample", "--num", "4", "--out", str(tmp_path / "x"), "--quiet", *args]) == 2
        stderr = capsys.readouterr().err
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: "), stderr
        return stderr

    assert "--guidance: the guidance scale must be 0 or more" in error(
        "--ckpt", str(diffusion), "--guidance", "-1"
    )
    assert "--steps: DDIM steps must lie in [1, 20]" in error(
        "--ckpt", str(diffusion), "--steps", "50"
    )
    assert "--steps / --guidance: options of a diffusion model" in error(
        "--ckpt", str(checkpoints["gan"]), "--steps", "10"
    )
    assert not (tmp_path / "x").exists()
