"""Applications: files in, files out, for the CLI and the web app (the top layer).

| module | command |
|---|---|
| `enhance.py` | `medsr enhance`: files, folders, series in; derived files out, never replacing |
| `fuse.py` | `medsr fuse`: CT + PET in; the enhanced PET and a fused picture out |
| `degrade.py` | `medsr degrade`: low/high pairs of files, parameters JSON, comparison strips |
| `demo.py` | `medsr demo`: every shipped model on a bundled sample, one report |

They call inward (io, physics, inference, evaluation, viz); nothing below imports them.
`medsr.cli`, `medsr.web` and `medsr.pacs` sit beside them (docs/ARCHITECTURE.md).
"""
