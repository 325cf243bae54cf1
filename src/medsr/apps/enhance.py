"""`medsr enhance`: files, folders, DICOM series and volumes in; derived files out, safely.

Inputs: image files (PNG, TIFF, JPEG, .npy, DICOM, NIfTI volumes, enhanced slice by slice),
`sample:NAME`, a folder holding DICOM files (in it or in its subfolders: one series, or
several, each then its own input `<folder>_series<Series Number>`) or a folder of images (a
batch; not recursive). Outputs go to one folder, named `<stem>_x<scale>` (`<stem>_denoised` at
scale 1) plus the format's suffix; a DICOM series becomes the folder `<stem>_x4/` of
`IM_0001.dcm`, ...; a 3-D volume as PNG becomes one PNG per slice (`..._z0000.png`).

Safety rules, all checked before any model runs:
* no output replaces an existing file: a job stops if anything named `<stem>_x4*` exists;
  with `skip_existing` (`--skip-existing`) a job whose output is there is skipped instead,
  so a batch that failed half-way is finished by running the same command again;
* the output folder may not be an input's folder (nor inside a folder given as input)
  unless `allow_input_folder` is set; even then nothing existing is replaced;
* two inputs with the same stem are refused (their outputs would collide).

Outputs are atomic: a job writes into a hidden staging folder inside the output folder and
moves its files out when all are written, its main output last (`primary_names`): a crash
or `kill -9` leaves no file, or a truncated one, under a final name (`io.atomic`).

Under torchrun every process plans the same jobs and checks the same destination, then
enhances only its share (`shard.Shard.take`: job k on rank k mod WORLD_SIZE).

`model="auto"` picks a model per input (`inference.registry.auto_model`: modality, size,
noise), which means reading each input once to choose and again to enhance it (a single
input is read once). `declared` (`--modality`, `--unit`, `--spacing`) is applied to every
input as read, before the choice.

`tile` is "auto" by default (`Predictor.plan`): the whole image in one model call when it
fits the memory budget, since overlapping tiles recompute their borders, else the largest
tiles that fit; `parse_tile` reads `--tile`.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from medsr.apps.declare import Declared
from medsr.apps.progress import JobResult, TileBar, TileHook, tiles_text
from medsr.image import Volume
from medsr.inference.predictor import Predictor, TileSize
from medsr.inference.registry import ModelChoice, auto_model
from medsr.inference.shard import Shard
from medsr.io.dicom import FolderSeries, is_dicom_file, read_dicom_series, series_in_folder
from medsr.io.errors import MedsrIOError
from medsr.io.read import READ_SUFFIXES, image_stem

FORMATS = {"png": ".png", "tiff": ".tif", "nifti": ".nii.gz", "dicom": ".dcm"}
AUTO = "auto"


def parse_tile(text: str, overlap: int = 0) -> TileSize:
    """`--tile` as the Predictor takes it: "auto", a tile side in input pixels (larger than
    `overlap`), or 0 for None (the whole image in one call); ValueError for anything else."""
    value = text.strip().lower()
    if value == AUTO:
        return "auto"
    try:
        side = int(value)
    except ValueError:
        side = -1
    if side < 0:
        raise ValueError(
            f"--tile must be auto, 0 (whole image) or a tile side in pixels, got {text!r}"
        )
    if side == 0:
        return None
    if side <= overlap:
        raise ValueError(f"--tile {side} must be larger than --overlap {overlap}")
    return side


@dataclass(frozen=True)
class Job:
    """One input: `source` (path or sample:NAME), output `stem`, and the folder it came from
    (`folder_input`: the user named that folder, so outputs may not go inside it); `series`:
    the one series of a DICOM folder that holds several."""

    source: str
    stem: str
    folder: Path | None
    folder_input: bool = False
    series: FolderSeries | None = None

    @property
    def label(self) -> str:
        """The input as messages name it: its path, and which series of the folder."""
        return self.source if self.series is None else f"{self.source} {self.series.label}"


def plan_jobs(inputs: Iterable[str]) -> list[Job]:
    """Expand the command-line inputs into jobs (see the module doc)."""
    jobs: list[Job] = []
    for item in inputs:
        if item.startswith("sample:"):
            jobs.append(Job(item, item.removeprefix("sample:"), None))
            continue
        path = Path(item)
        if path.is_file():
            jobs.append(Job(str(path), image_stem(path.name), path.resolve().parent))
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if any(p.suffix.lower() in (".dcm", ".dicom") or is_dicom_file(p) for p in files):
                jobs += _dicom_folder_jobs(path)
                continue
            images = [p for p in files if p.name.lower().endswith(READ_SUFFIXES + (".nii.gz",))]
            if not images and series_in_folder(path):  # DICOM in subfolders only (a CD)
                jobs += _dicom_folder_jobs(path)
                continue
            if not images:
                raise MedsrIOError(path, "folder holds no DICOM files and no images")
            jobs += [Job(str(p), image_stem(p.name), path.resolve(), True) for p in images]
        else:
            raise MedsrIOError(path, "no such file or folder")
    stems = [job.stem for job in jobs]
    if duplicates := sorted({s for s in stems if stems.count(s) > 1}):
        raise ValueError(f"several inputs share the name(s) {duplicates}; outputs would collide")
    return jobs


def _dicom_folder_jobs(folder: Path) -> list[Job]:
    """A DICOM folder: one job, or one per series when it holds several (an exported study:
    each series its own output, `<folder>_series<Series Number>`, `..._series<number>_<k>`
    where series share a number, `..._series_<k>` where they have none; k counts from 1).
    Of several, a localizer series (scout, surview: a projection, not a slice) is skipped
    with a warning that names it, unless all are localizers."""
    root = folder.resolve()
    series = series_in_folder(folder)
    if len(series) <= 1:
        return [Job(str(folder), root.name, root, True)]
    numbers = [s.number for s in series]
    only_localizers = all(s.localizer for s in series)
    jobs = []
    for k, entry in enumerate(series, 1):
        if entry.localizer and not only_localizers:
            warnings.warn(
                f"{folder} {entry.label} skipped: a localizer (scout), not a slice to enhance",
                stacklevel=2,
            )
            continue
        name = f"series{entry.number}" if entry.number is not None else "series"
        if entry.number is None or numbers.count(entry.number) > 1:
            name += f"_{k}"
        jobs.append(Job(str(folder), f"{root.name}_{name}", root, True, entry))
    return jobs


def primary_names(prefix: str) -> list[str]:
    """The names of a job's main output in any format (a series folder, the first PNG slice
    of a volume, one file): moved into place last, so one of them existing means the job's
    outputs are all there."""
    return [prefix, f"{prefix}_z0000.png", *(prefix + suffix for suffix in FORMATS.values())]


def check_destination(
    jobs: list[Job],
    out: Path,
    tag: str | Mapping[Job, str],
    allow_input_folder: bool,
    skip_existing: bool = False,
) -> list[Job]:
    """The jobs to run: all of them, less (with `skip_existing`) those whose main output
    exists. Raises when `out` is an input folder (unless allowed) or an output exists
    (with `skip_existing`: only files of an unfinished job). `tag`: the output tag (`x4`),
    or each job's."""
    out = out.resolve()
    for job in jobs:
        if job.folder is None or allow_input_folder:
            continue
        inside = job.folder_input and job.folder in out.parents
        if out == job.folder or inside:
            raise ValueError(
                f"output folder {out} is the input's folder {job.folder}; choose another "
                "or pass --overwrite-into-input-folder (existing files are never replaced)"
            )
    if not out.is_dir():
        return list(jobs)
    names = [p.name for p in out.iterdir()]
    todo = []
    for job in jobs:
        prefix = f"{job.stem}_{tag if isinstance(tag, str) else tag[job]}"
        if skip_existing and set(primary_names(prefix)) & set(names):
            continue
        if clash := [n for n in names if n == prefix or n.startswith((prefix + ".", prefix + "_"))]:
            hint = " of an unfinished job; remove it to redo the job" if skip_existing else ""
            raise FileExistsError(
                f"will not overwrite {out / clash[0]} (output{hint} of {job.label})"
            )
        todo.append(job)
    return todo


def default_format(volume: Volume) -> str:
    """The output format matching the input: DICOM, NIfTI, TIFF, else NIfTI for volumes and
    PNG for 2-D images."""
    source = volume.metadata.get("source")
    if source == "dicom":
        return "dicom"
    if source in ("tif", "tiff"):
        return "tiff"
    return "nifti" if source == "nifti" or volume.is_volume else "png"


def write_output(
    volume: Volume, out: Path, prefix: str, fmt: str, keep_identifiers: bool = False
) -> list[Path]:
    """Write `volume` as `out/<prefix><suffix>` (see the module doc for series and PNG);
    a NIfTI file carries no patient, study or scanner identifiers unless `keep_identifiers`
    (DICOM output keeps them: a derived series belongs in its study)."""
    from medsr.io import write
    from medsr.io.dicom_write import write_dicom_series

    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {sorted(FORMATS)}, got {fmt!r}")
    if fmt == "dicom" and volume.is_volume:
        return write_dicom_series(volume, out / prefix)
    # An integer PNG/TIFF in gives the same bit depth and integer scale out.
    options: dict[str, bool] = {"like_input": True} if fmt in ("png", "tiff") else {}
    if fmt == "nifti":
        options["keep_identifiers"] = keep_identifiers
    if fmt == "png" and volume.is_volume:
        return [
            write(volume.slice(k), out / f"{prefix}_z{k:04d}.png", **options)
            for k in range(volume.num_slices)
        ]
    return [write(volume, out / f"{prefix}{FORMATS[fmt]}", **options)]


def enhance_job(
    predictor: Predictor,
    job: Job,
    out: Path,
    fmt: str | None,
    tile: TileSize,
    overlap: int,
    consistency: bool,
    keep_identifiers: bool = False,
    *,
    volume: Volume | None = None,
    on_tile: TileHook | None = None,
) -> list[Path]:
    """Read one input (unless `volume` is given), enhance it, write the output (and the
    consistency map) atomically: staged in a hidden folder, then moved into `out`, the main
    output last (module doc). A volume shows a bar over its slices; `on_tile(done, total)`
    follows the tiles (`Predictor.enhance`)."""
    from medsr.inference.consistency import consistency_map, save_consistency
    from medsr.io.atomic import move_into, staging

    if volume is None:
        volume = read_job(job)
    tiles = {} if on_tile is None else {"on_tile": on_tile}
    enhanced = predictor.enhance(
        volume, progress=volume.num_slices > 1, tile_size=tile, overlap=overlap, **tiles
    )
    prefix = f"{job.stem}_{output_tag(predictor.scale)}"
    with staging(out) as stage:
        fmt = fmt or default_format(volume)
        written = write_output(enhanced, stage, prefix, fmt, keep_identifiers)
        if consistency:
            lows = volume.array if volume.is_volume else volume.array[None]
            highs = enhanced.array if enhanced.is_volume else enhanced.array[None]
            results = [
                consistency_map(lo, hi, predictor.task, predictor.scale)
                for lo, hi in zip(lows, highs, strict=True)
            ]
            written += save_consistency(results, stage / prefix, volume.unit)
        tops = list(dict.fromkeys(stage / p.relative_to(stage).parts[0] for p in written))
        move_into(tops, out, last=tops[0])
    return [out / p.relative_to(stage) for p in written]


def output_tag(scale: int) -> str:
    return f"x{scale}" if scale > 1 else "denoised"


def read_job(job: Job, declared: Declared | None = None) -> Volume:
    """The image of `job`, with what the user declared about it (`Declared.apply`)."""
    from medsr.io.samples import read_source

    if job.series is None:
        volume = read_source(job.source)
    else:
        volume = read_dicom_series(job.source, series_uid=job.series.uid)
    return declared.apply(volume, job.source) if declared is not None else volume


def choose_models(
    jobs: list[Job],
    model: str,
    declared: Declared | None = None,
    chosen: Callable[[Job, ModelChoice], None] | None = None,
) -> tuple[dict[Job, str], dict[Job, Volume]]:
    """Each job's model: `model` for all, or with `model="auto"` each input's `auto_model`
    (reported to `chosen`). Also the images read to choose that are worth keeping (a single
    input: it is then not read twice)."""
    if model != AUTO or Path(model).is_file():
        return {job: model for job in jobs}, {}
    names: dict[Job, str] = {}
    kept: dict[Job, Volume] = {}
    for job in jobs:
        volume = read_job(job, declared)
        try:
            choice = auto_model(volume)
        except ValueError as error:
            raise ValueError(f"{job.label}: --model auto: {error}") from None
        names[job] = choice.name
        if chosen is not None:
            chosen(job, choice)
        if len(jobs) == 1:
            kept[job] = volume
    return names, kept


def _shape_out(volume: Volume, scale: int) -> tuple[int, ...]:
    *depth, height, width = volume.shape
    return (*depth, height * scale, width * scale)


def enhance_paths(
    inputs: list[str],
    out: str | Path,
    model: str = AUTO,
    backend: str = "torch",
    fmt: str | None = None,
    tile: TileSize = "auto",
    overlap: int = 32,
    consistency: bool = False,
    allow_input_folder: bool = False,
    device: str = "cpu",
    report: Callable[[Path], None] | None = None,
    shard: Shard | None = None,
    skip_existing: bool = False,
    skipped: Callable[[Job], None] | None = None,
    keep_identifiers: bool = False,
    dose: float | None = None,
    strength: float = 1.0,
    ensemble: bool = False,
    precision: str = "auto",
    *,
    declared: Declared | None = None,
    chosen: Callable[[Job, ModelChoice], None] | None = None,
    done: Callable[[JobResult], None] | None = None,
    tile_progress: bool = True,
) -> list[Path]:
    """Enhance every input (this process's share of them under torchrun) into folder `out`;
    returns the paths written here (module doc). `model`: a name, a checkpoint or `"auto"`
    (each input's `auto_model`, passed to `chosen`). `skip_existing`: leave out the jobs whose
    output is there (each is passed to `skipped`). `keep_identifiers`: NIfTI outputs keep
    the patient, study and scanner identifiers of their source (`write_output`). `dose` and
    `strength`: a non-blind denoiser's noise level (`Predictor.with_noise_options`).
    `ensemble`: each model averaged over the 8 flips / rotations of the image
    (`Predictor.with_geometric_ensemble`). `precision`: "auto", "fp32" or "bf16" for the
    torch backend (`Predictor.load`). `declared`: modality, unit, spacing set on every
    input (`Declared`). `done` gets each finished input's `JobResult` (seconds included);
    `tile_progress`: a tile bar for 2-D images (`TileBar`)."""
    from tqdm import tqdm

    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"--format must be one of {sorted(FORMATS)}, got {fmt!r}")
    jobs = plan_jobs(inputs)
    if not jobs:
        raise ValueError("no inputs given")
    shard = shard or Shard()
    names, kept = choose_models(jobs, model, declared, chosen if shard.is_main else None)
    predictors: dict[str, Predictor] = {}
    for name in dict.fromkeys(names.values()):
        loaded = Predictor.load(
            name, device=shard.device(device), backend=backend, precision=precision
        )
        try:
            predictors[name] = loaded.with_noise_options(dose, strength).with_geometric_ensemble(
                ensemble
            )
        except ValueError as error:
            picked = f"--model auto picked {name}: " if model == AUTO else ""
            raise ValueError(f"{picked}{error}") from None
    out = Path(out)
    tags = {job: output_tag(predictors[names[job]].scale) for job in jobs}
    todo = check_destination(jobs, out, tags, allow_input_folder, skip_existing)
    for job in jobs:
        if job not in todo and skipped is not None and shard.is_main:
            skipped(job)
    shard.barrier()  # no rank writes before every rank has checked the folder
    jobs = shard.take(todo)
    written: list[Path] = []
    for job in tqdm(jobs, desc="images", unit="image", disable=len(jobs) < 2):
        start = time.perf_counter()
        volume = kept.pop(job, None) or read_job(job, declared)
        predictor = predictors[names[job]]
        show_tiles = tile_progress and not volume.is_volume
        with TileBar(job.stem, leave=len(jobs) == 1) as bar:
            paths = enhance_job(
                predictor,
                job,
                out,
                fmt,
                tile,
                overlap,
                consistency,
                keep_identifiers,
                volume=volume,
                on_tile=bar if show_tiles else None,
            )
        for path in paths:
            if report is not None:
                report(path)
        written += paths
        if done is not None:
            seconds = time.perf_counter() - start
            shape = _shape_out(volume, predictor.scale)
            name = Path(names[job]).name  # a checkpoint by its file name
            height, width = volume.shape[-2:]
            planned = predictor.plan((height, width), tile, overlap)
            tiles = tiles_text(volume.shape, *planned, overlap)
            done(JobResult(job.label, name, volume.shape, shape, paths, seconds, tiles))
    return written
