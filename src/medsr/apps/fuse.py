"""`medsr fuse`: a CT and a PET in, the enhanced PET and a fused display image out.

Inputs are anything `medsr enhance` reads (DICOM series folders, NIfTI, images, sample:NAME).
Outputs go to one folder, named after the PET: `<pet stem>_x4` in the format of the PET input
(or `fmt`; a DICOM PET becomes a derived DICOM series `<stem>_x4/IM_0001.dcm ...`), and
`<pet stem>_x4_fused.png` (a 3-D CT: one `_fused_z0000.png` per slice): the PET in the `hot`
colour map, blended with weight `alpha` over the CT in its window. Nothing existing is
replaced, and the output folder may not be an input's folder (as `medsr enhance`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medsr.apps.enhance import check_destination, default_format, plan_jobs, write_output
from medsr.image import Volume, Window
from medsr.inference.fusion import FusionPredictor
from medsr.io.atomic import move_into, staging
from medsr.viz.overlays import DEFAULT_CT_WINDOW, default_suv_max, fused_overlay


def write_overlays(
    ct: Volume,
    pet: Volume,
    prefix: Path,
    ct_window: Window | None,
    alpha: float,
    suv_max: float | None,
) -> list[Path]:
    """Write `prefix.png` (2-D) or `prefix_z0000.png`, ... (3-D); never replaces a file."""
    from PIL import Image

    window = ct_window or ct.window or DEFAULT_CT_WINDOW
    top = suv_max or default_suv_max(pet.array)
    cts = ct.array if ct.is_volume else ct.array[None]
    pets = pet.array if pet.is_volume else pet.array[None]
    paths = [prefix.with_name(f"{prefix.name}_z{k:04d}.png") for k in range(len(cts))]
    if not ct.is_volume:
        paths = [prefix.with_name(prefix.name + ".png")]
    if existing := [str(p) for p in paths if p.exists()]:
        raise FileExistsError(f"will not overwrite {', '.join(existing[:3])}")
    for path, c, p in zip(paths, cts, pets, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(fused_overlay(c, p, window, alpha, top), mode="RGB").save(path)
    return paths


def fuse_paths(
    ct: str,
    pet: str,
    out: str | Path,
    model: str = "fusion-petct-x4",
    fmt: str | None = None,
    alpha: float = 0.5,
    ct_window: Window | None = None,
    suv_max: float | None = None,
    device: str = "cpu",
    allow_input_folder: bool = False,
    report: Callable[[Path], None] | None = None,
    allow_mismatch: bool = False,
) -> list[Path]:
    """Fuse one CT and one PET into folder `out`; returns the written paths (module doc).

    `allow_mismatch`: fuse a CT and a PET whose PatientID or FrameOfReferenceUID differ
    (refused otherwise); the output's DerivationDescription says so."""
    from medsr.io.samples import read_source

    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    jobs = [*plan_jobs([ct]), *plan_jobs([pet])]
    if len(jobs) != 2:
        raise ValueError(f"--ct and --pet must each be one image or series, got {len(jobs)} jobs")
    if jobs[0].stem == jobs[1].stem:  # only the PET's name is used; keep them apart anyway
        jobs[0] = type(jobs[0])(
            jobs[0].source, jobs[0].stem + "_ct", jobs[0].folder, jobs[0].folder_input
        )
    predictor = FusionPredictor.load(model, device=device)
    tag = f"x{predictor.scale}"
    out = Path(out)
    check_destination(jobs, out, tag, allow_input_folder)
    ct_volume, pet_volume = read_source(ct), read_source(pet)
    result = predictor.fuse(
        ct_volume, pet_volume, progress=ct_volume.num_slices > 1, allow_mismatch=allow_mismatch
    )
    prefix = f"{jobs[1].stem}_{tag}"
    with staging(out) as stage:  # atomic outputs, as medsr enhance writes them
        staged = write_output(result.enhanced, stage, prefix, fmt or default_format(pet_volume))
        staged += write_overlays(
            result.ct, result.enhanced, stage / f"{prefix}_fused", ct_window, alpha, suv_max
        )
        tops = list(dict.fromkeys(stage / p.relative_to(stage).parts[0] for p in staged))
        move_into(tops, out, last=tops[0])
    written = [out / p.relative_to(stage) for p in staged]
    for path in written:
        if report is not None:
            report(path)
    return written
