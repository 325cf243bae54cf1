"""One style for what the CLI prints besides results: errors, warnings, device and -o checks."""

from __future__ import annotations

import errno
import warnings
from pathlib import Path

import pytest
import torch

from medsr.apps.console import (
    check_device,
    check_output_folder,
    printed_warnings,
    user_error_line,
)


def test_warnings_print_once_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with printed_warnings():
        for _ in range(3):
            warnings.warn("spacing unknown\nsecond line", UserWarning, stacklevel=1)
        warnings.warn("another", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: spacing unknown\nwarning: another\n"


def test_user_errors_become_one_line_and_bugs_do_not() -> None:
    exists = FileExistsError(errno.EEXIST, "File exists", "out")
    assert user_error_line(exists) == (
        "error: out already exists; medsr never replaces a file: choose another name"
    )
    assert user_error_line(ValueError("bad\nmore")) == "error: bad"
    assert user_error_line(AssertionError("Torch not compiled with CUDA enabled")) is not None
    assert user_error_line(AssertionError("a bug")) is None
    assert user_error_line(KeyError("a bug")) is None


def test_device_check() -> None:
    check_device("cpu")
    check_device("auto")
    with pytest.raises(ValueError, match="not a device name"):
        check_device("gpu0")
    if torch.version.cuda is None:
        with pytest.raises(ValueError, match="CPU-only build"):
            check_device("cuda:0")


def test_output_folder_check(tmp_path: Path) -> None:
    check_output_folder(tmp_path / "new" / "folder")
    check_output_folder(tmp_path)
    (tmp_path / "file").write_text("x")
    for output in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(ValueError, match="is an existing file"):
            check_output_folder(output)
