"""The ``Examples:`` of the public entry points run as doctests, so they stay true."""

from __future__ import annotations

import doctest
import importlib
import tempfile
import types

import pytest

# module -> its public entry point, whose docstring must hold a runnable ``Examples:`` section
ENTRY_POINTS = {
    "workbench.adversarial.attacks": "build_attack",
    "workbench.data.reader": "open_dataset",
    "workbench.scene.spec": "load_spec",
    "workbench.evaluation.runner": "Runner",
}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_examples(module: types.ModuleType) -> doctest.TestResults:
    """Runs every example in ``module``'s docstrings; the report of failures goes to stdout."""
    return doctest.testmod(module, optionflags=FLAGS, report=True)


@pytest.fixture(autouse=True)
def temporary_files_under_tmp_path(tmp_path, monkeypatch):
    """The examples make their files with :mod:`tempfile`; here those land in ``tmp_path``."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


@pytest.mark.parametrize("module_name", ENTRY_POINTS)
def test_examples_of_the_entry_points_run(module_name, capsys):
    module = importlib.import_module(module_name)
    docstring = getattr(module, ENTRY_POINTS[module_name]).__doc__
    assert "\n    Examples:\n" in docstring and ">>> " in docstring
    results = run_examples(module)
    assert results.failed == 0, capsys.readouterr().out
    assert results.attempted >= docstring.count(">>> ")


def test_a_wrong_example_fails():
    module = types.ModuleType("wrong")
    module.__doc__ = "Examples:\n    >>> 1 + 1\n    3\n"
    assert run_examples(module) == doctest.TestResults(failed=1, attempted=1)
