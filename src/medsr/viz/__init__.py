"""Pictures: the only medsr package that imports matplotlib (always the file-only Agg backend).

| module | pictures |
|---|---|
| `strips.py` | titled panels side by side (`medsr degrade` strips), `to_size` for display |
| `figures.py` | `medsr evaluate`: comparison grids, metric bars, radial NPS curves |
| `samples.py` | training: validation samples at each sample step (`train()` writes them) |
| `overlays.py` | `medsr fuse` and the web page: the PET colour map over the CT |
| `consistency.py` | `medsr enhance --consistency`: the map of input - degraded output |

Import a module of this package only where a picture is drawn (inside the function): the
layers below it (image, io, physics, models, data, checkpoint) never import it, nor does
`medsr.inference`, so `import medsr.inference` stays free of matplotlib
(docs/ARCHITECTURE.md; the import-linter contracts in pyproject.toml enforce it).
"""
