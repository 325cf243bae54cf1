"""What the command line prints besides its results, in one style.

* a user error is one line, `error: ...` (the CLI exits 2): `user_error_line` turns the
  exceptions a user can cause (bad input, a missing file, an existing output, no CUDA) into
  that line and leaves programming errors alone;
* a warning is one line, `warning: ...`, printed when it happens (`printed_warnings`), once
  per message, never Python's `path:line: UserWarning` with its source line;
* `say` prints a line without breaking a progress bar on the terminal;
* `check_device` and `check_output_folder` refuse a CUDA device that this PyTorch cannot use
  and an `-o` that names a file before any work starts.
"""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medsr.io.errors import one_line

DEVICES = "cpu, cuda, cuda:N, mps or auto"


def say(text: str, err: bool = False) -> None:
    """Print `text` on stdout (stderr with `err`) above any active tqdm bar."""
    from tqdm import tqdm

    tqdm.write(text, file=sys.stderr if err else sys.stdout)


def warning_line(message: Warning | str) -> str:
    """`warning: <first line of the message>`, as `medsr info` prints it."""
    return f"warning: {one_line(str(message))}"


@contextmanager
def printed_warnings() -> Iterator[None]:
    """Inside: every warning is printed on stderr as one `warning_line`, at once and once per
    message (a series warns the same thing for each of its files)."""
    seen: set[str] = set()

    def show(message: Warning | str, *args: Any, **kwargs: Any) -> None:
        line = warning_line(message)
        if line not in seen:
            seen.add(line)
            say(line, err=True)

    with warnings.catch_warnings():  # the filters stay: deprecations remain hidden
        warnings.showwarning = show
        yield


def user_error_line(error: BaseException) -> str | None:
    """The one-line `error: ...` for an error the user caused, None for any other (a bug,
    which should keep its traceback)."""
    from medsr.io.samples import SampleNotAvailable

    if isinstance(error, AssertionError) and "CUDA" in str(error):
        return f"error: {cuda_problem('cuda')}"  # torch's "not compiled with CUDA enabled"
    if isinstance(error, OSError) and error.errno is not None and error.filename:
        return f"error: {_os_error(error)}"
    if isinstance(error, (ValueError, OSError, ImportError, SampleNotAvailable)):
        return f"error: {one_line(str(error))}"
    return None


def _os_error(error: OSError) -> str:
    """`[Errno 17] File exists: 'out'` as what it means for a medsr user."""
    name = error.filename
    if error.errno == errno.EEXIST:
        return f"{name} already exists; medsr never replaces a file: choose another name"
    if error.errno == errno.ENOTDIR:
        return f"{name}: a part of this path is a file, not a folder"
    return f"{name}: {(error.strerror or str(error)).lower()}"


def cuda_problem(device: str) -> str:
    """Why `device` (a CUDA one) cannot be used here, in one line."""
    import torch

    if torch.version.cuda is None:
        return (
            f"--device {device}: this PyTorch ({torch.__version__}) is a CPU-only build; "
            "use --device cpu, or install a CUDA build of torch"
        )
    if not torch.cuda.is_available():
        return (
            f"--device {device}: no CUDA GPU is visible to PyTorch {torch.__version__} "
            f"(CUDA {torch.version.cuda}); use --device cpu"
        )
    count = torch.cuda.device_count()
    return f"--device {device}: there are {count} CUDA device(s), numbered 0 to {count - 1}"


def check_device(device: str) -> None:
    """ValueError, one line, when `device` is malformed or not usable by this PyTorch build
    (`auto` always is: it falls back to the CPU)."""
    import torch

    if device == "auto":
        return
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r} is not a device name; use {DEVICES}") from None
    if parsed.type == "cuda":
        index = parsed.index or 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ValueError(cuda_problem(device))
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS (Apple GPU) is not available; use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device!r}: medsr runs on {DEVICES}")


def check_output_folder(path: str | Path) -> None:
    """ValueError when the output folder `-o` names an existing file (or a path through one)."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            what = f"-o {path}" if part == path else f"-o {path}: {part}"
            raise ValueError(
                f"{what} is an existing file; -o names an output folder (new, or existing: "
                "files in it are never replaced)"
            )
