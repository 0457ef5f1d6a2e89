"""Atomic writes: complete or absent, and as readable as a plain write would make them."""

import os
import stat

import pytest

from covgan.io import atomic_directory, atomic_path


@pytest.fixture
def umask_027():
    previous = os.umask(0o027)
    yield
    os.umask(previous)


def test_an_atomic_file_is_complete_or_absent_with_the_umasks_mode(tmp_path, umask_027):
    target = tmp_path / "out" / "result.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert not target.parent.exists() or not any(target.parent.iterdir())
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    plain = tmp_path / "plain.json"
    plain.write_text("x")  # what open() makes under this umask: 0640
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o640
    assert list(target.parent.iterdir()) == [target]


def test_an_atomic_folder_replaces_the_old_one_only_when_complete(tmp_path, umask_027):
    target = tmp_path / "report"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("first")
    assert stat.S_IMODE(target.stat().st_mode) == 0o750  # as mkdir makes it under this umask
    with pytest.raises(RuntimeError):
        with atomic_directory(target, overwrite=True) as tmp:
            (tmp / "a.txt").write_text("second")
            raise RuntimeError("killed mid-write")
    assert (target / "a.txt").read_text() == "first"
    with pytest.raises(FileExistsError, match="--overwrite"):
        with atomic_directory(target):
            pass
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "a.txt").write_text("second")
    assert (target / "a.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]
