"""The library leaves matplotlib's backend and pyplot alone: a notebook user's backend stays.

No ``workbench`` module imports ``matplotlib.pyplot`` or calls ``matplotlib.use``; the library
draws on ``matplotlib.figure.Figure`` objects. Importing every module and drawing figures leaves
the backend the user chose and adds no figure to pyplot's global state (pyplot itself may be
imported by a dependency: torchmetrics imports it).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent

CHECK = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    import matplotlib
    import numpy as np
    import workbench

    def check(stage):
        backend = matplotlib.rcParams["backend"]
        assert backend == "template", f"{stage}: backend switched to {backend!r}"
        pyplot = sys.modules.get("matplotlib.pyplot")
        assert pyplot is None or not pyplot.get_fignums(), f"{stage}: a pyplot figure is open"

    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            importlib.import_module(info.name)
            check(f"import {info.name}")

    from workbench.evaluation.report import eps_plot
    from workbench.generative.grid import grid_figure

    report = {
        "eps": [0.1, 0.2], "norm": "Linf", "clean_acc": 0.9, "num_classes": 10,
        "robust_acc": {"pgd": {"0.1": 0.5, "0.2": 0.2}},
        "worst_case_acc": {"0.1": 0.4, "0.2": 0.1},
    }
    assert eps_plot(report)
    check("eps_plot")
    grid_figure(np.zeros((2, 3, 4, 4, 1), np.float32), ["a", "b"], "title").savefig(
        sys.argv[1]
    )
    check("grid_figure")
    """
)


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            call = node.func
            is_use = call.attr == "use" and getattr(call.value, "id", None) == "matplotlib"
            names = ["matplotlib.use"] if is_use else []
        else:
            continue
        found += [
            f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}"
            for name in names
            if name in ("matplotlib.pyplot", "matplotlib.use")
        ]
    return found


def test_no_module_imports_pyplot_or_sets_the_backend():
    offences = [o for path in sorted(PACKAGE.rglob("*.py")) for o in _offences(path)]
    assert not offences, "use matplotlib.figure.Figure instead:\n" + "\n".join(offences)


def test_importing_and_drawing_leave_the_backend_and_pyplot_alone(tmp_path):
    env = {**os.environ, "MPLBACKEND": "template"}
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path / "grid.png")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "grid.png").stat().st_size > 0
