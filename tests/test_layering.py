"""The package's import rules (.importlinter), checked with import-linter on the real code.

Contracts: packages import only the layers below them, so there are no package cycles (the
training layer above models, data, curriculum, adversarial and generative; models above nothing
but the neutral helpers); scene and render import no torch; data imports neither curriculum nor
training; nothing in workbench imports the app.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT = str(Path(sys.executable).with_name("lint-imports"))


def lint(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT, str(config), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_the_package_keeps_every_import_contract():
    result = lint(ROOT / ".importlinter", ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_a_torch_import_in_the_render_path_and_an_upward_import_are_caught(tmp_path):
    """The same contracts over a copy of the package with two planted violations."""
    package = tmp_path / "workbench"
    for path in (ROOT / "workbench").rglob("*.py"):
        target = package / path.relative_to(ROOT / "workbench")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (package / "scene" / "planted.py").write_text("import torch\n")
    (package / "models" / "planted.py").write_text("import workbench.training.classifier\n")
    result = subprocess.run(
        [LINT, str(ROOT / ".importlinter"), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "workbench.scene.planted -> torch" in result.stdout
    assert "workbench.models.planted -> workbench.training.classifier" in result.stdout
