"""Applications: files in, files out, for the CLI and the web app (the top layer).

| module | command |
|---|---|
| `enhance.py` | `medsr enhance`: files, folders, series in; derived files out, never replacing |
| `fuse.py` | `medsr fuse`: CT + PET in; the enhanced PET and a fused picture out |
| `degrade.py` | `medsr degrade`: low/high pairs of files, parameters JSON, comparison strips |
| `demo.py` | `medsr demo`: every shipped model on a bundled sample, one report |
| `declare.py` | `--modality`, `--unit`, `--spacing` for inputs whose files do not record them |
| `progress.py` | tile bar, per-image time and batch summary of `medsr enhance` |
| `console.py` | one style for user errors and warnings; `--device` and `-o` checked first |

They call inward (io, physics, inference, evaluation, viz); nothing below imports them.
`medsr.cli`, `medsr.web` and `medsr.pacs` sit beside them (docs/ARCHITECTURE.md).
"""
