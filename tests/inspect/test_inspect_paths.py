"""Paths the app opens stay under the data root, whatever ``..``, absolute paths or symlinks say."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.inspect.paths import resolve_under, state_dir


def test_paths_inside_the_root_resolve(tmp_path):
    (tmp_path / "data" / "a").mkdir(parents=True)
    assert resolve_under(tmp_path, "data/a") == (tmp_path / "data" / "a").resolve()
    assert resolve_under(tmp_path, "data/../data/a") == (tmp_path / "data" / "a").resolve()
    assert resolve_under(tmp_path, str(tmp_path / "data")) == (tmp_path / "data").resolve()
    assert resolve_under(tmp_path, ".") == tmp_path.resolve()


@pytest.mark.parametrize("path", ["..", "../other", "data/../../x", "/etc/passwd", "~"])
def test_escapes_are_refused_with_one_line(tmp_path, path):
    (tmp_path / "data").mkdir()
    with pytest.raises(WorkbenchError, match="outside the data root") as info:
        resolve_under(tmp_path / "data", path)
    assert "\n" not in str(info.value)


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(WorkbenchError, match="outside the data root"):
        resolve_under(root, "link")
    with pytest.raises(WorkbenchError, match="outside the data root"):
        resolve_under(root, "link/file.json")


def test_state_dir_is_a_hidden_folder_under_the_root(tmp_path):
    folder = state_dir(tmp_path, "logs")
    assert folder.is_dir() and folder.parent.parent == tmp_path.resolve()
    assert folder.parent.name.startswith(".")
