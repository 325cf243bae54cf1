"""The `medsr` command line. Thin: each command parses arguments and calls the library.

`app` (Typer) is built in `base`; each module registers its commands on it when imported:
`info` (info, data list), `prepare` (degrade, train, evaluate), `enhance` (enhance, fuse,
export-onnx, demo), `serve` (pacs, serve). `python -m medsr.cli` runs it (torchrun too).
"""

from __future__ import annotations

from medsr.cli import enhance, info, prepare, serve  # noqa: F401  (register the commands)
from medsr.cli.base import app

__all__ = ["app"]
