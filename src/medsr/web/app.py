"""`medsr serve`: a FastAPI app with one offline page and a JSON API. Research use only.

```python
from medsr.web.app import create_app
app = create_app(["runs/srgan-ct-ldct-x4-pretrain/best.pt"])   # uvicorn.run(app)
```

Routes:
* `GET /`: the page (`static/index.html`, no CDN); `GET /api/models`: models and limits.
* `POST /api/enhance`: multipart `files` (one image, or the DICOM slices of one series),
  `model` (none or "auto": picked from the image by `registry.auto_model`, the summary's
  `model_choice` says which and why), optional `reference` (PSNR/SSIM), optional
  `download=png|dicom` (answer with that file instead of JSON). Waits for the work.
* `POST /api/fuse` (CT+PET mode, as `medsr fuse`): multipart `ct` and `pet` (each one
  image or one DICOM series), optional `model` (a fusion model), `alpha` (0..1, default
  0.5) and `download=png|dicom|fused`. 422 with `medsr fuse`'s message when they do not
  overlap.
* `POST /api/jobs/enhance`, `POST /api/jobs/fuse`: the same fields (no `download`); answer
  202 with the job at once. `GET /api/jobs/{id}`: state (queued, running, done, failed,
  cancelled), phase, tiles done / total, fraction, elapsed and estimated remaining seconds,
  the model chosen, then the result URL or the error. `POST /api/jobs/{id}/cancel` stops the
  model at its next batch of tiles (`jobs`). The page uses these.
* `GET /api/results/{id}`: the JSON summary again (with `orientation` letters and the
  `dicom_tags` of the first file); `DELETE` forgets it.
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
timings, never file names or DICOM attributes. Jobs and results are served only to the
client that made them (`clients`: an HttpOnly SameSite=Strict cookie; 404 for anyone else).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medsr._version import __version__
from medsr.web.clients import ClientCookie
from medsr.web.jobs import JobStore
from medsr.web.limits import (
    ResultStore,
    Settings,
    UploadTooLarge,
    WebError,
    WorkerPool,
    check_upload_size,
    scrub,
)
from medsr.web.models import Model, load_models
from medsr.web.routes import INTERNAL, ROUTES, Server
from medsr.web.service import NOTICE, Result

__all__ = ["Guard", "create_app", "host_allowed", "same_origin", "scrub"]
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
            await _error(500, INTERNAL)(scope, receive, marked)

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


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": scrub(message), "research_use_only": True}, status_code=status)


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
    jobs = JobStore(capacity=max(64, 4 * settings.keep_results), ttl_s=settings.result_ttl_s)
    server = Server(settings, predictors, pool, results, jobs)
    app = FastAPI(
        title="medsr", version=__version__, description=__doc__.split("\n\n")[0] + f" {NOTICE}"
    )
    app.add_middleware(ClientCookie)
    app.add_middleware(Guard, settings=settings)  # outermost: added last
    app.mount("/static", StaticFiles(packages=[STATIC]), name="static")
    app.router.on_shutdown.append(pool.shutdown)
    _add_error_handlers(app)
    for routes in ROUTES:
        app.include_router(routes(server))
    return app
