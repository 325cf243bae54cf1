"""The routes of `medsr serve` (listed in `medsr.web.app`'s doc) and what they share.

Every piece of model work runs as a `jobs.Job` on the worker pool: `POST /api/jobs/enhance`
and `/api/jobs/fuse` answer 202 with the job at once (the page polls it and can cancel it);
`POST /api/enhance` and `/api/fuse` start the same job and wait for it (scripts, `curl`).
Jobs and results belong to the client that started them (`clients.ClientCookie`): another
client gets the 404 of an unknown id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response

from medsr._version import __version__
from medsr.inference import Predictor
from medsr.inference.fusion import FusionPredictor
from medsr.io.atomic import write_bytes_atomic
from medsr.web.clients import client_of, same_client
from medsr.web.fuse import DEFAULT_ALPHA, fuse_upload, overlay_download
from medsr.web.jobs import Cancelled, Job, JobStore, collecting_warnings
from medsr.web.limits import (
    ResultStore,
    Settings,
    TimedOut,
    Unprocessable,
    WebError,
    WorkerPool,
    scrub,
)
from medsr.web.models import AUTO, Model, choose_model, describe_model
from medsr.web.service import MEDIA, NOTICE, Result, Upload, enhance_upload, new_id

log = logging.getLogger("medsr.web")
INTERNAL = "internal server error (a fault of medsr serve, logged); not your input"

Files = Annotated[
    list[UploadFile],
    File(description="One DICOM/PNG/JPEG/TIFF file, or the DICOM slices of one series"),
]
ModelField = Annotated[
    str | None,
    Form(description='Model id (GET /api/models); "auto" or none: picked from the image'),
]
Ensemble = Annotated[
    bool,
    Form(
        description="Average the model over the 8 flips / rotations of the image "
        "(self-ensemble): a little better, 8x the time"
    ),
]
Reference = Annotated[
    list[UploadFile] | None,
    File(description="Optional full-resolution reference: PSNR/SSIM are reported"),
]
CtFiles = Annotated[
    list[UploadFile],
    File(description="CT in HU: one DICOM/PNG/TIFF file or the DICOM slices of one series"),
]
PetFiles = Annotated[
    list[UploadFile],
    File(description="PET (SUV) of the same patient position: one file or one DICOM series"),
]
FusionModel = Annotated[
    str | None, Form(description="Fusion model id (GET /api/models, kind fusion)")
]
Alpha = Annotated[
    float, Form(ge=0.0, le=1.0, description="Weight of the PET colour map over the CT")
]


async def _uploads(files: list[UploadFile] | None) -> list[Upload]:
    return [Upload(f.filename or f"file{k}", await f.read()) for k, f in enumerate(files or [])]


def _attachment(name: str, data: bytes) -> Response:
    suffix = name[name.rfind(".") :]
    return Response(
        data,
        media_type=MEDIA.get(suffix, "application/octet-stream"),
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@dataclass(frozen=True)
class Work:
    """A request's work before it starts: its kind, a log line, the function and arguments
    (the job is passed last)."""

    kind: str
    what: str
    function: Callable[..., Result]
    args: tuple[Any, ...]


@dataclass
class Server:
    """What the route groups share: the models, the limits, the pool, the jobs and results."""

    settings: Settings
    models: dict[str, Model]
    pool: WorkerPool
    results: ResultStore[Result]
    jobs: JobStore

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

    def start(self, owner: str, work: Work) -> Job:
        """Queue `work` as a job of client `owner`; Busy (503) when the pool is full."""
        job = Job(new_id(), owner, work.kind, timeout_s=self.settings.timeout_s)
        log.info("request %s: %s", job.id[:8], work.what)
        job.future = self.pool.submit(self._execute, job, work)
        self.jobs.put(job)
        return job

    def _execute(self, job: Job, work: Work) -> None:
        """Run a job in a worker thread; every outcome is recorded on the job, none raised."""
        start = time.perf_counter()
        try:
            job.start()
            with collecting_warnings(job):
                result = work.function(*work.args, job)
        except Cancelled:
            job.end("cancelled")
        except WebError as error:
            job.end("failed", error=(error.status_code, scrub(error.message)))
        except Exception:
            log.exception("job %s failed", job.id[:8])
            job.end("failed", error=(500, INTERNAL))
        else:
            self._keep(job, result)
            job.end("done", result_id=job.id)
        code = job.error[0] if job.error else 200
        elapsed = time.perf_counter() - start
        log.info("request %s: %s (%d) after %.2f s", job.id[:8], job.state, code, elapsed)

    def _keep(self, job: Job, result: Result) -> None:
        base = f"/api/results/{job.id}"
        result.owner = job.owner
        result.summary |= {
            "id": job.id,
            "downloads": {f: f"{base}/download/{f}" for f in result.downloads},
            "data": {n: f"{base}/data/{n}" for n in result.arrays},
            "warnings": list(job.warnings),
        }
        self.results.put(job.id, result, result.nbytes)
        if self.settings.store_dir is not None:
            folder = self.settings.store_dir / job.id
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in result.downloads.values():
                write_bytes_atomic(folder / name, data)

    async def wait(self, job: Job) -> Result:
        """The result of `job` once it ends; its error as a WebError; TimedOut (504, and
        the job cancelled) after `timeout_s`."""
        assert job.future is not None
        try:
            await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(job.future)), self.settings.timeout_s
            )
        except asyncio.CancelledError:  # the client went away: so does its work
            job.cancel()
            raise
        except asyncio.TimeoutError:
            job.cancel()
            raise TimedOut(
                f"processing took longer than {self.settings.timeout_s:g} s (medsr serve --timeout)"
            ) from None
        if job.state == "cancelled":  # a queued job cancelled by the pool's shutdown
            raise WebError("the work was cancelled", 503)
        if job.error is not None:
            raise WebError(job.error[1], job.error[0])
        return self.results.get(job.id)

    async def respond(self, request: Request, work: Work, download: str | None) -> Any:
        """Start `work` and answer with its summary (or the `download` file) when it ends."""
        result = await self.wait(self.start(client_of(request), work))
        if download:
            return _attachment(*result.downloads[download])
        return result.summary

    def job(self, request: Request, job_id: str) -> Job:
        """The job `job_id` of this client; 404 for an unknown one or another client's."""
        job = _owned(self.jobs, job_id, request)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (expired or unknown)")
        return job

    def get(self, request: Request, result_id: str) -> Result:
        """The result `result_id` of this client; 404 for an unknown one or another client's."""
        result = _owned(self.results, result_id, request)
        if result is None:
            kept = f"results are kept {self.settings.result_ttl_s:g} s"
            raise HTTPException(404, f"no result {result_id!r} (expired or unknown; {kept})")
        return result


def page_routes(server: Server) -> APIRouter:
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


async def _enhance_work(
    server: Server,
    files: list[UploadFile],
    model: str | None,
    reference: list[UploadFile] | None,
    ensemble: bool = False,
) -> Work:
    if model in (None, "", AUTO):
        if not server.single:
            choose_model(server.single, None, False, server.fusion)  # 422: none loaded
        model = None
    else:
        model, _ = choose_model(server.single, model, False, server.fusion)
    server.check_request(None, (), len(files) + len(reference or []))
    uploads, refs = await _uploads(files), await _uploads(reference)
    size = sum(len(u.data) for u in uploads + refs)
    what = f"enhance {len(uploads)} file(s), {size} bytes, model {model or AUTO}"
    what += ", self-ensemble" if ensemble else ""
    args = (server.single, model, uploads, refs, server.settings, ensemble)
    return Work("enhance", what, enhance_upload, args)


async def _fuse_work(
    server: Server, ct: list[UploadFile], pet: list[UploadFile], model: str | None, alpha: float
) -> Work:
    key, predictor = choose_model(server.fusion, model, True, server.single)
    server.check_request(None, (), len(ct) + len(pet))
    cts, pets = await _uploads(ct), await _uploads(pet)
    size = sum(len(u.data) for u in cts + pets)
    what = f"fuse {len(cts)} CT + {len(pets)} PET file(s), {size} bytes, model {key}"
    return Work("fuse", what, fuse_upload, (key, predictor, cts, pets, alpha, server.settings))


def enhance_routes(server: Server) -> APIRouter:
    """`POST /api/enhance` and `POST /api/fuse`: start the work and wait for it."""
    router = APIRouter()

    @router.post("/api/enhance", summary="Enhance one image or one DICOM series (waits)")
    async def enhance(
        request: Request,
        files: Files,
        model: ModelField = None,
        reference: Reference = None,
        ensemble: Ensemble = False,
        download: Annotated[
            str | None, Form(description="png or dicom: reply with that file instead of JSON")
        ] = None,
    ) -> Any:
        server.check_request(download, ("png", "dicom"), 0)
        work = await _enhance_work(server, files, model, reference, ensemble)
        return await server.respond(request, work, download)

    @router.post("/api/fuse", summary="Enhance a PET onto its CT's grid and overlay it (waits)")
    async def fuse(
        request: Request,
        ct: CtFiles,
        pet: PetFiles,
        model: FusionModel = None,
        alpha: Alpha = DEFAULT_ALPHA,
        download: Annotated[
            str | None,
            Form(
                description="png, dicom (enhanced PET) or fused "
                "(overlay): reply with that file instead of JSON"
            ),
        ] = None,
    ) -> Any:
        server.check_request(download, ("png", "dicom", "fused"), 0)
        work = await _fuse_work(server, ct, pet, model, alpha)
        return await server.respond(request, work, download)

    return router


def job_routes(server: Server) -> APIRouter:
    """`/api/jobs`: start work without waiting, follow its progress, cancel it."""
    router = APIRouter(prefix="/api/jobs")

    def started(job: Job) -> JSONResponse:
        return JSONResponse(job.status(), status_code=202)

    @router.post("/enhance", status_code=202, summary="Start enhancing; answers the job")
    async def enhance(
        request: Request,
        files: Files,
        model: ModelField = None,
        reference: Reference = None,
        ensemble: Ensemble = False,
    ) -> JSONResponse:
        work = await _enhance_work(server, files, model, reference, ensemble)
        return started(server.start(client_of(request), work))

    @router.post("/fuse", status_code=202, summary="Start a CT+PET fusion; answers the job")
    async def fuse(
        request: Request,
        ct: CtFiles,
        pet: PetFiles,
        model: FusionModel = None,
        alpha: Alpha = DEFAULT_ALPHA,
    ) -> JSONResponse:
        work = await _fuse_work(server, ct, pet, model, alpha)
        return started(server.start(client_of(request), work))

    @router.get("/{job_id}", summary="State, phase, fraction done, elapsed and remaining seconds")
    async def status(request: Request, job_id: str) -> dict[str, Any]:
        return server.job(request, job_id).status()

    @router.post("/{job_id}/cancel", summary="Stop the work (at its next batch of tiles)")
    async def cancel(request: Request, job_id: str) -> dict[str, Any]:
        job = server.job(request, job_id)
        return {**job.status(), "cancelling": job.cancel()}

    return router


def result_routes(server: Server) -> APIRouter:
    """`/api/results/{id}`: the summary, raw slices, downloads, and forgetting a result."""
    router = APIRouter(prefix="/api/results/{result_id}")

    @router.get("", summary="The JSON summary of a result")
    async def summary(request: Request, result_id: str) -> dict[str, Any]:
        return server.get(request, result_id).summary

    @router.get(
        "/data/{name}", summary="One slice as raw little-endian float32; shape in X-Shape: h,w"
    )
    async def data(request: Request, result_id: str, name: str, slice: int = 0) -> Response:
        arrays = server.get(request, result_id).arrays
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
    async def download_file(
        request: Request, result_id: str, fmt: str, alpha: float | None = None
    ) -> Response:
        result = server.get(request, result_id)
        if fmt not in result.downloads:
            raise HTTPException(404, f"format {fmt!r} is not one of {sorted(result.downloads)}")
        if alpha is not None:  # the page's alpha slider redraws the overlay it offers
            if fmt != "fused":
                raise Unprocessable(f"alpha applies to the fused download only, not {fmt!r}")
            # a whole series of PNGs: off the event loop, under the same limits as a request
            return _attachment(*await server.pool.run(overlay_download, result, alpha))
        return _attachment(*result.downloads[fmt])

    @router.delete("", summary="Forget a result now")
    async def forget(request: Request, result_id: str) -> dict[str, Any]:
        server.get(request, result_id)  # 404 unless it is this client's
        return {"deleted": server.results.delete(result_id), "research_use_only": True}

    return router


ROUTES = (page_routes, enhance_routes, job_routes, result_routes)


def _owned(store: Any, key: str, request: Request) -> Any:
    """The item `key` of `store` when it exists and belongs to this request's client, else
    None: another client's item answers like an unknown one (no existence oracle)."""
    try:
        item = store.get(key)
    except KeyError:
        return None
    if item is None or not same_client(item.owner, client_of(request)):
        return None
    return item
