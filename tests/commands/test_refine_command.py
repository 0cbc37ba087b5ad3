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
