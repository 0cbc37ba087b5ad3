"""Paths that printed a traceback: an ``--out`` that is a file, a corrupt manifest, a text file
or malformed checkpoint, an export over an existing file, a robustness report over someone
else's folder. Each is one stderr line and exit 2, for every command that takes them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli
from tests.inspect.tiny_models import make_checkpoints, make_report
from workbench.cli import main
from workbench.commands.robustness import MARKER, check_report_dir
from workbench.errors import WorkbenchError


def _one_line(stderr: str, code: int, returncode: int, *fragments: str) -> str:
    assert returncode == code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _cli_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    return _one_line(done.stderr, 2, done.returncode, *fragments)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    out = make_checkpoints(folder)
    out["text"] = folder / "notes.ckpt"
    out["text"].write_text("these are my notes, not a checkpoint\n")
    out["hparams"] = folder / "hparams.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": [1, 2], "workbench_kind": "classifier"},
               out["hparams"])  # fmt: skip
    out["file"] = folder / "a_file"
    out["file"].write_text("mine")
    return out


def test_render_out_that_is_a_file(files):
    _cli_error(
        run_cli("render", "digits", "--num", "2", "--out", str(files["file"]), check=False),
        f"--out {files['file']}: is a file",
    )
    assert files["file"].read_text() == "mine"


@pytest.mark.parametrize("args", [["demo"], ["experiment", "augment", "--quick"]])
def test_demo_and_experiments_refuse_a_file_out(files, args):
    done = run_cli(*args, "--out", str(files["file"] / "sub"), check=False)
    _cli_error(done, f"lies under the file {files['file']}")


def test_verify_exit_codes_say_corrupt_or_cannot_verify(rendered_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(rendered_dir, copy)
    victim = next(copy.glob("shards/000000/*.rgb.png"))
    victim.write_bytes(victim.read_bytes()[:-5])
    corrupt = run_cli("verify", str(copy), check=False)
    assert corrupt.returncode == 1 and f"{victim}: sha256 mismatch" in corrupt.stdout
    assert corrupt.stderr.strip() == f"corrupt: 1 problems in {copy} (listed above)"
    (copy / "manifest.json").write_text('{"format": "workbench-dataset", ')
    _cli_error(
        run_cli("verify", str(copy), check=False),
        f"cannot verify {copy}: {copy / 'manifest.json'}: unreadable manifest",
    )
    (copy / "manifest.json").write_text(json.dumps({"format": "workbench-dataset", "version": 1}))
    _cli_error(run_cli("verify", str(copy), check=False), "malformed manifest (field num_samples)")
    assert run_cli("verify", str(rendered_dir)).returncode == 0


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("text", "notes.ckpt: not a readable checkpoint"),
        ("hparams", "hparams.ckpt: malformed checkpoint (hyper_parameters is a list"),
    ],
)
def test_bad_checkpoint_files_on_the_real_cli(files, tmp_path, name, fragment):
    done = run_cli("robustness", "--ckpt", str(files[name]), "--data", "digits",
                   "--out", str(tmp_path / "report"), "--quiet", check=False)  # fmt: skip
    _cli_error(done, fragment)
    assert not (tmp_path / "report").exists()


def _commands(ckpt: Path, out: Path, data: Path) -> dict[str, list[str]]:
    return {
        "sample": ["sample", "--ckpt", str(ckpt), "--num", "2", "--out", str(out), "--quiet"],
        "refine": ["refine", "--ckpt", str(ckpt), "--data", str(data), "--out", str(out)],
        "robustness": ["robustness", "--ckpt", str(ckpt), "--data", "digits", "--out", str(out)],
        "attack-scenes": ["attack-scenes", str(ckpt), "digits", "--out", str(out), "--quiet"],
    }


@pytest.mark.parametrize("command", ["sample", "refine", "robustness", "attack-scenes"])
def test_every_command_refuses_bad_checkpoints_and_file_outs(
    files, rendered_dir, tmp_path, capsys, command
):
    def error(args: list[str], *fragments: str) -> None:
        code = main(args)  # in-process: the command's own dispatch and error handling
        _one_line(capsys.readouterr().err, 2, code, *fragments)

    out = tmp_path / "out"
    for name, fragment in (
        ("text", "notes.ckpt: not a readable checkpoint (truncated or not a torch file"),
        ("hparams", "hyper_parameters is a list, not a mapping"),
    ):
        error(_commands(files[name], out, rendered_dir)[command], fragment)
        assert not out.exists()
    error(
        _commands(files["text"], files["file"], rendered_dir)[command],
        f"--out {files['file']}: is a file",
    )
    error(
        _commands(files["text"], files["file"] / "sub", rendered_dir)[command],
        f"lies under the file {files['file']}",
    )
    assert files["file"].read_text() == "mine"


def test_export_refuses_to_overwrite_without_force(rendered_dir, tmp_path):
    target = tmp_path / "coco.json"
    target.write_text("my annotations")
    _cli_error(
        run_cli("export", "coco", str(rendered_dir), "--out", str(target), check=False),
        f"--out {target}: already exists; add --force",
    )
    assert target.read_text() == "my annotations"
    _cli_error(
        run_cli("export", "coco", str(rendered_dir), "--out", str(tmp_path), check=False),
        "is a folder",
    )
    run_cli("export", "coco", str(rendered_dir), "--out", str(target), "--force")
    assert len(json.loads(target.read_text())["images"]) == 40


def test_webdataset_export_refuses_a_folder_with_files_or_a_file(rendered_dir, tmp_path, capsys):
    folder = tmp_path / "wds"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code = main(["export", "webdataset", str(rendered_dir), "--out", str(folder)])
    _one_line(capsys.readouterr().err, 2, code, "already holds files; add --force")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    code = main(["export", "webdataset", str(rendered_dir), "--out", str(folder / "notes.txt")])
    _one_line(capsys.readouterr().err, 2, code, "notes.txt: is a file")
    # --force writes the tars and removes only those an earlier, longer export left
    (folder / "shard-000009.tar").write_bytes(b"old")
    args = ["export", "webdataset", str(rendered_dir), "--out", str(folder), "--force"]
    assert main([*args, "--samples-per-tar", "16"]) == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["notes.txt", "shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]


def test_robustness_refuses_a_folder_that_is_not_its_report(files, tmp_path, capsys):
    taken = tmp_path / "taken"
    (taken / "units").mkdir(parents=True)
    (taken / "units" / "thesis.pt").write_bytes(b"mine")
    (taken / "report.json").write_text("mine")
    code = main(["robustness", "--ckpt", str(files["classifier"]), "--data", "digits",
                 "--out", str(taken), "--quiet"])  # fmt: skip
    _one_line(capsys.readouterr().err, 2, code, f"--out {taken}: not empty", MARKER)
    assert (taken / "units" / "thesis.pt").read_bytes() == b"mine"
    assert (taken / "report.json").read_text() == "mine"


def test_robustness_reopens_its_own_reports(files, tmp_path):
    report = make_report(files["classifier"], tmp_path / "report")
    check_report_dir(report)  # a report without the marker (the demo's, or an older one)
    (report / "notes.txt").write_text("mine")
    with pytest.raises(WorkbenchError, match="not a robustness report"):
        check_report_dir(report)
    (report / MARKER).write_text("")
    check_report_dir(report)  # marked as a report: notes beside it are fine
