"""The package as a user gets it: a wheel, installed into a fresh venv, runs from any folder.

The wheel is built offline (``pip wheel --no-build-isolation --no-index``) from a copy of the
files it is made of, so nothing is written into the checkout. The temporary venv sees this
venv's site-packages through a ``.pth`` line (torch and the rest are not installed again); a
directory added that way has its own ``.pth`` files ignored, so this venv's editable finder is
not installed there and the wheel's copy of ``workbench`` is what imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

from tests.conftest import ROOT
from workbench.data.reader import open_dataset

# What the wheel is built from (pyproject.toml names README.md as the long description).
SOURCES = ("pyproject.toml", "README.md", "workbench", "scenes", "configs", "app", "textures")
# Prints where the installed package finds itself and the files `workbench demo` and
# `workbench app` need, as JSON.
PROBE = """
import json, workbench
from workbench.cli import build_parser
from workbench.commands.app import command
from workbench.resources import app_dir, configs_dir, scenes_dir, textures_dir
argv = command(build_parser().parse_args(["app", "--data-root", "."]))
files = [scenes_dir() / "digits.yaml", scenes_dir() / "assets" / "mug.obj",
         configs_dir() / "classifier_digits.yaml", configs_dir() / "vae_digits.yaml",
         app_dir() / "main.py", app_dir() / "pages" / "browse.py",
         textures_dir() / "NOTICE", textures_dir() / "frost" / "frost5.jpg"]
print(json.dumps({"package": workbench.__file__, "app_script": argv[argv.index("run") + 1],
                  "files": {str(f): f.is_file() for f in files}}))
"""


def _setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_pyproject_lists_every_package():
    """The package list is explicit (the resource folders are mapped into the package), so a new
    subpackage of ``workbench/`` must be added to it, or the wheel leaves it out."""
    config = _setuptools_config()
    expected = set(find_namespace_packages(str(ROOT), include=["workbench", "workbench.*"]))
    for package, folder in config["package-dir"].items():
        expected |= {package} | {
            f"{package}.{sub}" for sub in find_namespace_packages(str(ROOT / folder))
        }
    assert sorted(config["packages"]) == sorted(expected)


def _run(argv: list[str], cwd: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}"
    return done


@pytest.mark.packaging
def test_wheel_runs_from_a_fresh_venv(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(tmp_path / "dist"), str(source)], tmp_path)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("workbench-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
             tmp_path).stdout.strip()
    )  # fmt: skip
    (purelib / "outer_site_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), *pip[1:], "install", "-q", "--no-deps", "--no-index", str(wheel)], tmp_path)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = json.loads(_run([str(python), "-c", PROBE], elsewhere).stdout)
    assert Path(probe["package"]).is_relative_to(purelib), probe["package"]
    assert Path(probe["app_script"]) == purelib / "workbench/resources/app/serve.py"
    assert probe["files"] and all(probe["files"].values()), probe["files"]
    assert all(Path(f).is_relative_to(purelib) for f in probe["files"]), probe["files"]

    workbench = str(venv / "bin" / "workbench")
    helped = _run([workbench, "--help"], elsewhere).stdout
    assert all(name in helped for name in ("render", "demo", "app")), helped
    out = elsewhere / "digits4"
    _run([workbench, "render", "digits", "--num", "4", "--workers", "1", "--out", str(out)],
         elsewhere)  # fmt: skip
    assert len(open_dataset(out)) == 4
