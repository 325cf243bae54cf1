"""`medsr serve`: a web page and JSON API around `medsr.inference`. Research use only.

`create_app(models, settings)` (in `medsr.web.app`) builds the FastAPI app; `models` loads
and describes the served models (single-image and CT+PET fusion); `service` holds the
HTTP-free work (decode uploads, enhance, consistency, metrics, downloads), `fuse` the same
for the CT+PET mode, and `limits` the request limits, the bounded worker pool and the
in-memory result store. Needs the `web` extra: `pip install 'medsr[web]'`.
"""

from __future__ import annotations
