"""`medsr serve`: a FastAPI app with one offline page and a JSON API. Research use only.

```python
from medsr.web.app import create_app
app = create_app(["runs/srgan-ct-ldct-x4-pretrain/best.pt"])   # uvicorn.run(app)
```

Routes:
* `GET /`: the page (`static/index.html`, no CDN); `GET /api/models`: models and limits.
* `POST /api/enhance`: multipart `files` (one image, or the DICOM slices of one series),
  `model`, optional `reference` (PSNR/SSIM), optional `download=png|dicom` (answer with
  that file instead of JSON).
* `POST /api/fuse` (CT+PET mode, as `medsr fuse`): multipart `ct` and `pet` (each one
  image or one DICOM series), optional `model` (a fusion model), `alpha` (0..1, default
  0.5) and `download=png|dicom|fused`. 422 with `medsr fuse`'s message when they do not
  overlap.
* `GET /api/results/{id}`: the JSON summary again; `DELETE` forgets it.
* `GET /api/results/{id}/data/{input,output,consistency,reference,ct}?slice=k`: raw
  little-endian float32 `(h, w)`, the shape in the header `X-Shape: h,w`.
* `GET /api/results/{id}/download/{png,dicom,fused}`: 16-bit PNG / derived DICOM (zip when
  several files); `fused` (CT+PET results): the RGB overlay, `?alpha=` to redraw it.

Errors are `{"detail": message, "research_use_only": true}` with 400 (a Host header not
in `Settings.allowed_hosts`: DNS rebinding), 403 (a POST or DELETE from another origin),
408 (a body that stalls), 413 (upload too large), 415 (not DICOM/PNG/JPEG/TIFF), 422
(malformed file, too many pixels, wrong modality), 503 (busy), 504 (timeout), and 500 for a
fault of the server itself (logged with its traceback; the answer names no file or path).
Every response carries `X-Research-Use-Only: true`. Logs hold request ids, sizes and
timings, never file names or DICOM attributes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medsr._version import __version__
from medsr.inference import Predictor
from medsr.inference.fusion import FusionPredictor
from medsr.io.atomic import write_bytes_atomic
from medsr.web.fuse import DEFAULT_ALPHA, fuse_upload, overlay_download
from medsr.web.limits import (
    ResultStore,
    Settings,
    Unprocessable,
    UploadTooLarge,
    WebError,
    WorkerPool,
    check_upload_size,
)
from medsr.web.models import Model, choose_model, describe_model, load_models
from medsr.web.service import MEDIA, NOTICE, Result, Upload, enhance_upload, new_id

log = logging.getLogger("medsr.web")
STATIC = ("medsr.web", "static")


class Guard:
    """ASGI middleware at the edge of the app: answer only allowed Host values (400) and
    same-origin POST/DELETE (403); refuse bodies over the upload limit (413, before
    parsing) or that stall (408); turn any fault of the app into a JSON 500; mark every
    response `X-Research-Use-Only: true`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self.limit = settings.max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def marked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [*message.get("headers", []), (b"x-research-use-only", b"true")]
                message = {**message, "headers": headers}
            await send(message)

        headers = dict(scope["headers"])
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _error(*refusal)(scope, receive, marked)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            try:
                message = await asyncio.wait_for(receive(), self.settings.body_timeout_s)
            except asyncio.TimeoutError:
                seconds = self.settings.body_timeout_s
                raise HTTPException(408, f"request body stalled for {seconds:g} s") from None
            received += len(message.get("body", b""))
            try:
                check_upload_size(received, self.limit)
            except UploadTooLarge as error:  # a chunked body without Content-Length
                raise HTTPException(error.status_code, error.message) from None
            return message

        try:
            await self.app(scope, counted, marked)
        except Exception:
            log.exception("request failed: %s %s", scope.get("method"), scope.get("path"))
            if started:  # the answer is under way: nothing better to do than close
                raise
            message = "internal server error (a fault of medsr serve, logged); not your input"
            await _error(500, message)(scope, receive, marked)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """(status, message) when the request is refused before the app sees it."""
        host = headers.get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.settings.allowed_hosts):
            return 400, (
                f"Host {host[:80]!r} is not served here (medsr serve --allow-host NAME); "
                "this refuses DNS rebinding"
            )
        origin = headers.get(b"origin")
        changes = scope.get("method") in ("POST", "PUT", "PATCH", "DELETE")
        if changes and origin is not None and not same_origin(origin.decode("latin-1"), host):
            return 403, "cross-origin request refused: use the page this server serves"
        length = headers.get(b"content-length", b"")
        if length.isdigit():
            try:
                check_upload_size(int(length), self.limit)
            except UploadTooLarge as error:
                return error.status_code, error.message
        return None


def _host_name(host: str) -> str:
    """The name of a Host value or an origin's authority, without port and brackets."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """True when the Host header names an allowed host (any port), or "*" is allowed."""
    return "*" in allowed or _host_name(host) in {a.lower() for a in allowed}


def same_origin(origin: str, host: str) -> bool:
    """True when an Origin header (`scheme://host[:port]`) is the server's own Host."""
    authority = origin.split("://", 1)[-1].rstrip("/")
    return origin != "null" and authority.lower() == host.strip().lower()


_PATH = re.compile(r"(?<![\w.:])/(?:[^\s'\"/]+/)+([^\s'\"/]*)")


def scrub(message: str) -> str:
    """`message` without server paths: `/tmp/medsr-web-x/input/input_0000.dcm` becomes
    `input_0000.dcm` (what a client may see of a file is its own name); the API's own
    routes (`/api/...`, `/static/...`) stay."""

    def name(match: re.Match[str]) -> str:
        if match.group(0).startswith(("/api/", "/static/")):
            return match.group(0)
        return match.group(1) or "<folder>"

    return _PATH.sub(name, message)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": scrub(message), "research_use_only": True}, status_code=status)


async def _uploads(files: list[UploadFile] | None) -> list[Upload]:
    return [Upload(f.filename or f"file{k}", await f.read()) for k, f in enumerate(files or [])]


def _attachment(name: str, data: bytes) -> Response:
    suffix = name[name.rfind(".") :]
    return Response(
        data,
        media_type=MEDIA.get(suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@dataclass
class _Server:
    """What the route groups share: the models, the limits, the worker pool, kept results."""

    settings: Settings
    models: dict[str, Model]
    pool: WorkerPool
    results: ResultStore[Result]

    @property
    def single(self) -> dict[str, Predictor]:
        return {k: p for k, p in self.models.items() if isinstance(p, Predictor)}

    @property
    def fusion(self) -> dict[str, FusionPredictor]:
        return {k: p for k, p in self.models.items() if isinstance(p, FusionPredictor)}

    def check_request(self, download: str | None, formats: tuple[str, ...], count: int) -> None:
        if download not in (None, "", *formats):
            raise Unprocessable(f"download must be {' or '.join(formats)}, got {download!r}")
        if count > self.settings.max_files:
            raise Unprocessable(f"{count} files: the limit is {self.settings.max_files}")

    async def run(
        self, what: str, download: str | None, work: Callable[..., Result], *args: Any
    ) -> Any:
        """Run `work(*args)` in the pool, keep the result, answer with its summary (or file)."""
        request_id, start = new_id(), time.perf_counter()
        log.info("request %s: %s", request_id[:8], what)
        try:
            result = await self.pool.run(work, *args)
        except WebError as error:
            elapsed = time.perf_counter() - start
            log.info("request %s: %d after %.2f s", request_id[:8], error.status_code, elapsed)
            raise
        base = f"/api/results/{request_id}"
        result.summary |= {
            "id": request_id,
            "downloads": {f: f"{base}/download/{f}" for f in result.downloads},
            "data": {n: f"{base}/data/{n}" for n in result.arrays},
        }
        self.results.put(request_id, result, result.nbytes)
        if self.settings.store_dir is not None:
            folder = self.settings.store_dir / request_id
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in result.downloads.values():
                write_bytes_atomic(folder / name, data)
        shape, elapsed = result.summary["output"]["shape"], time.perf_counter() - start
        log.info("request %s: 200, output %s, %.2f s", request_id[:8], shape, elapsed)
        if download:
            return _attachment(*result.downloads[download])
        return result.summary

    def get(self, result_id: str) -> Result:
        try:
            return self.results.get(result_id)
        except KeyError:
            kept = f"results are kept {self.settings.result_ttl_s:g} s"
            raise HTTPException(
                404, f"no result {result_id!r} (expired or unknown; {kept})"
            ) from None


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as `{"detail", "research_use_only"}` with its status."""

    @app.exception_handler(WebError)
    async def web_error(_: Request, error: WebError) -> JSONResponse:
        return _error(error.status_code, error.message)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return _error(422, f"invalid request: {where}")


def _page_routes(server: _Server) -> APIRouter:
    """`GET /` (the page) and `GET /api/models`."""
    router = APIRouter()

    @router.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        from importlib.resources import files

        return FileResponse(str(files("medsr.web") / "static" / "index.html"))

    @router.get("/api/models", summary="Models this server runs, and its limits")
    async def list_models() -> dict[str, Any]:
        limits = {k: v for k, v in asdict(server.settings).items() if k != "store_dir"}
        return {
            "research_use_only": True,
            "notice": NOTICE,
            "version": __version__,
            "models": [describe_model(k, p) for k, p in server.models.items()],
            "limits": limits,
        }

    return router


def _enhance_routes(server: _Server) -> APIRouter:
    """`POST /api/enhance`: one image or one DICOM series through a single-input model."""
    router = APIRouter()

    @router.post("/api/enhance", summary="Enhance one image or one DICOM series")
    async def enhance(
        files: Annotated[
            list[UploadFile],
            File(description="One DICOM/PNG/JPEG/TIFF file, or the DICOM slices of one series"),
        ],
        model: Annotated[str | None, Form(description="Model id (GET /api/models)")] = None,
        reference: Annotated[
            list[UploadFile] | None,
            File(description="Optional full-resolution reference: PSNR/SSIM are reported"),
        ] = None,
        download: Annotated[
            str | None, Form(description="png or dicom: reply with that file instead of JSON")
        ] = None,
    ) -> Any:
        key, predictor = choose_model(server.single, model, False, server.fusion)
        server.check_request(download, ("png", "dicom"), len(files) + len(reference or []))
        uploads, refs = await _uploads(files), await _uploads(reference)
        size = sum(len(u.data) for u in uploads + refs)
        what = f"{len(uploads)} file(s), {size} bytes, model {key}"
        args = (key, predictor, uploads, refs, server.settings)
        return await server.run(what, download, enhance_upload, *args)

    return router


def _fuse_routes(server: _Server) -> APIRouter:
    """`POST /api/fuse`: a PET enhanced onto its CT's grid and overlaid (as `medsr fuse`)."""
    router = APIRouter()

    @router.post("/api/fuse", summary="Enhance a PET onto its CT's grid and overlay it on the CT")
    async def fuse(
        ct: Annotated[
            list[UploadFile],
            File(description="CT in HU: one DICOM/PNG/TIFF file or the DICOM slices of one series"),
        ],
        pet: Annotated[
            list[UploadFile],
            File(
                description="PET (SUV) of the same patient position: one file or one DICOM series"
            ),
        ],
        model: Annotated[
            str | None, Form(description="Fusion model id (GET /api/models, kind fusion)")
        ] = None,
        alpha: Annotated[
            float, Form(ge=0.0, le=1.0, description="Weight of the PET colour map over the CT")
        ] = DEFAULT_ALPHA,
        download: Annotated[
            str | None,
            Form(
                description="png, dicom (enhanced PET) or fused "
                "(overlay): reply with that file instead of JSON"
            ),
        ] = None,
    ) -> Any:
        key, predictor = choose_model(server.fusion, model, True, server.single)
        server.check_request(download, ("png", "dicom", "fused"), len(ct) + len(pet))
        cts, pets = await _uploads(ct), await _uploads(pet)
        size = sum(len(u.data) for u in cts + pets)
        what = f"fuse {len(cts)} CT + {len(pets)} PET file(s), {size} bytes, model {key}"
        args = (key, predictor, cts, pets, alpha, server.settings)
        return await server.run(what, download, fuse_upload, *args)

    return router


def _result_routes(server: _Server) -> APIRouter:
    """`/api/results/{id}`: the summary, raw slices, downloads, and forgetting a result."""
    router = APIRouter(prefix="/api/results/{result_id}")

    @router.get("", summary="The JSON summary of a result")
    async def summary(result_id: str) -> dict[str, Any]:
        return server.get(result_id).summary

    @router.get(
        "/data/{name}", summary="One slice as raw little-endian float32; shape in X-Shape: h,w"
    )
    async def data(result_id: str, name: str, slice: int = 0) -> Response:
        arrays = server.get(result_id).arrays
        if name not in arrays:
            raise HTTPException(404, f"{name!r} is not one of {sorted(arrays)}")
        stack = arrays[name]
        if not 0 <= slice < stack.shape[0]:
            raise HTTPException(404, f"slice {slice} out of range 0..{stack.shape[0] - 1}")
        image = np.ascontiguousarray(stack[slice], dtype="<f4")
        shape = f"{image.shape[0]},{image.shape[1]}"
        return Response(
            image.tobytes(),
            media_type="application/octet-stream",
            headers={"X-Shape": shape, "Cache-Control": "no-store"},
        )

    @router.get(
        "/download/{fmt}",
        summary="16-bit PNG, derived DICOM or fused overlay PNG (zip when several "
        "files); ?alpha= redraws the overlay",
    )
    async def download_file(result_id: str, fmt: str, alpha: float | None = None) -> Response:
        result = server.get(result_id)
        if fmt not in result.downloads:
            raise HTTPException(404, f"format {fmt!r} is not one of {sorted(result.downloads)}")
        if alpha is not None:  # the page's alpha slider redraws the overlay it offers
            if fmt != "fused":
                raise Unprocessable(f"alpha applies to the fused download only, not {fmt!r}")
            # a whole series of PNGs: off the event loop, under the same limits as a request
            return _attachment(*await server.pool.run(overlay_download, result, alpha))
        return _attachment(*result.downloads[fmt])

    @router.delete("", summary="Forget a result now")
    async def forget(result_id: str) -> dict[str, Any]:
        return {"deleted": server.results.delete(result_id), "research_use_only": True}

    return router


def create_app(
    models: list[str] | Mapping[str, Model] | None = None, settings: Settings | None = None
) -> FastAPI:
    """The app serving `models` (names / checkpoint paths, or loaded `Predictor`s and
    `FusionPredictor`s by id; default: every installed model) under `settings`."""
    settings = settings or Settings()
    predictors = (
        dict(models) if isinstance(models, Mapping) else load_models(models or [], settings.device)
    )
    pool = WorkerPool(settings.workers, settings.queue, settings.timeout_s)
    results: ResultStore[Result] = ResultStore(
        settings.keep_results, settings.result_ttl_s, settings.max_result_bytes
    )
    server = _Server(settings, predictors, pool, results)
    app = FastAPI(
        title="medsr", version=__version__, description=__doc__.split("\n\n")[0] + f" {NOTICE}"
    )
    app.add_middleware(Guard, settings=settings)
    app.mount("/static", StaticFiles(packages=[STATIC]), name="static")
    app.router.on_shutdown.append(pool.shutdown)
    _add_error_handlers(app)
    for routes in (_page_routes, _enhance_routes, _fuse_routes, _result_routes):
        app.include_router(routes(server))
    return app
