"""Seeded fuzzing of the readers and of the web API (issue 13: robust under hostile input).

    python benchmarks/fuzz.py --cases 5000 [--seed 0] [--timeout 20]

Each case mutates a small valid file of a format medsr reads (DICOM: plain, RLE, deflated,
JPEG 2000, JPEG lossless, big endian, no preamble; PNG 8/16-bit and colour; JPEG; TIFF 2-D
and 3-D; NIfTI .nii/.nii.gz with the medsr extension; .npy with its sidecar; InVesalius
.inv3): random bit flips, bytes set to boundary values, truncation, repeated or inserted
blocks, zero tails, 32-bit fields set to huge values, a huge size declared in the header, a
hostile medsr header (`HOSTILE_HEADERS`), or a suffix that lies about the content. Cases
go, about 70 / 22 / 8 %, to `medsr.io.read` (under `READ_LIMITS`), to `POST /api/enhance`
(one file, a DICOM series, a reference, odd form fields) and to `POST /api/fuse` (a CT and
a PET, tiny random-weight models, through FastAPI's TestClient).

An outcome is `accepted` (read / 200), `refused` (MedsrIOError / a 4xx JSON answer),
`unhandled` (any other exception, or a 4xx/5xx that is not JSON), `http500`, or `hang`
(over `--timeout` seconds). The table gives the counts per target, the slowest case and the
peak RSS of the process. `tests/test_fuzz.py` runs a few hundred cases of the same corpus.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import plistlib
import random
import resource
import signal
import sys
import tarfile
import tempfile
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
READ_LIMITS = {"max_pixels": 16_000_000, "max_bytes": 256 * 2**20, "parse_seconds": 5.0}
HOSTILE_HEADERS: list[Any] = [
    {"window": 5},
    {"origin": None},
    {"slope": None},
    {"slope": 0},
    {"intercept": "x"},
    {"spacing": [0, 1]},
    {"spacing": [1e308, 1e308]},
    {"spacing": "1 mm"},
    {"direction": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]},
    {"direction": [1, 2, 3]},
    {"window": [40, -400]},
    {"window": [float("nan"), 400]},
    {"modality": ["CT"]},
    {"unit": 5},
    {"version": "1"},
    {"affine_lps": [[1, 2], [3, 4]]},
    {"metadata": [1, 2]},
    {"metadata": {"spacing_known": "yes", "slices": 5, "dicom_headers": 1}},
    {"intercept": 10**400},
    [],
    "medsr",
    None,
]


class Hang(KeyboardInterrupt):
    """Raised by the alarm when a case passes its time: a control-flow exception, so the
    readers' error boundary lets it through."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise Hang in the main thread after `seconds` (SIGALRM; Python code only)."""

    def ring(*_: Any) -> None:
        raise Hang()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Seed:
    """A small valid file: `suffix` (how it is named), its bytes, an optional sidecar."""

    name: str
    suffix: str
    data: bytes
    sidecar: bytes | None = None


def _file_bytes(write: Callable[[Path], Any], suffix: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"seed{suffix}"
        write(path)
        return path.read_bytes()


def _inv3(shape: tuple[int, int, int] = (3, 16, 16)) -> bytes:
    plist = {
        "matrix": {"filename": "matrix.dat", "shape": list(shape), "dtype": "int16"},
        "spacing": [0.9, 0.9, 2.0],
        "window_level": 40.0,
        "window_width": 400.0,
        "modality": "CT",
        "orientation": 1,
    }
    matrix = np.random.default_rng(0).integers(-1000, 1000, shape, dtype=np.int16)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("p/main.plist", plistlib.dumps(plist)), ("p/matrix.dat", matrix)):
            blob = data if isinstance(data, bytes) else data.tobytes()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            archive.addfile(info, io.BytesIO(blob))
    return buffer.getvalue()


def seeds() -> list[Seed]:
    """The valid files every case starts from (deterministic)."""
    from PIL import Image
    from pydicom.data import get_testdata_file

    from medsr.image import Volume
    from medsr.io import write

    rng = np.random.default_rng(0)
    ct = Volume(rng.normal(40, 300, (24, 20)).astype(np.float32), (0.7, 0.7), "CT", "HU")
    stack = Volume(rng.normal(0, 1, (3, 12, 10)).astype(np.float32), (2.0, 0.5, 0.5), "MR")
    found: list[Seed] = [
        Seed("png16", ".png", _file_bytes(lambda p: write(ct, p), ".png")),
        Seed("tiff16", ".tif", _file_bytes(lambda p: write(ct, p), ".tif")),
        Seed("tiff3d", ".tif", _file_bytes(lambda p: write(stack, p, float32=True), ".tif")),
        Seed("nii.gz", ".nii.gz", _file_bytes(lambda p: write(stack, p), ".nii.gz")),
        Seed("nii", ".nii", _file_bytes(lambda p: write(ct, p), ".nii")),
        Seed("inv3", ".inv3", _inv3()),
    ]
    with tempfile.TemporaryDirectory() as folder:
        npy = write(stack, Path(folder) / "v.npy")
        found.append(Seed("npy", ".npy", npy.read_bytes(), npy.with_suffix(".json").read_bytes()))
    for mode, name in (("L", "png8"), ("RGB", "png-rgb")):
        buffer = io.BytesIO()
        array = rng.integers(0, 255, (20, 24, 3) if mode == "RGB" else (20, 24), dtype=np.uint8)
        Image.fromarray(array, mode).save(buffer, format="PNG")
        found.append(Seed(name, ".png", buffer.getvalue()))
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (24, 24), dtype=np.uint8)).save(buffer, format="JPEG")
    found.append(Seed("jpeg", ".jpg", buffer.getvalue()))
    for name in (
        "CT_small.dcm",
        "MR_small_RLE.dcm",
        "image_dfl.dcm",
        "MR_small_jp2klossless.dcm",
        "JPGLosslessP14SV1_1s_1f_8b.dcm",
        "MR_small_bigendian.dcm",
        "no_meta.dcm",
        "emri_small.dcm",
    ):
        path = get_testdata_file(name, download=False)
        if isinstance(path, str):
            found.append(Seed(name, ".dcm", Path(path).read_bytes()))
    return found


def _set_u32(data: bytearray, rng: random.Random) -> None:
    if len(data) > 8:
        at = rng.randrange(len(data) - 4)
        value = rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0x00010000, 0])
        data[at : at + 4] = value.to_bytes(4, "little")


def _huge_size(data: bytearray, rng: random.Random) -> None:
    """Declare a huge image in the header, where the format keeps its size."""
    side = rng.choice([0, 1, 40_000, 65_535]).to_bytes(4, "big")
    if data.startswith(b"\x89PNG"):  # IHDR width/height, CRC made right
        data[16:24] = side + side
        data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    for tag in (b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x11\x00US\x02\x00"):  # Rows, Columns
        at = bytes(data).find(tag)
        if at >= 0:
            data[at + 8 : at + 10] = side[2:][::-1]
    if bytes(data[:4]) in (b"\x5c\x01\x00\x00",):  # NIfTI-1 dim[1..3]
        data[42:48] = np.array([30_000] * 3, "<i2").tobytes()


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random mutations of `data` (module doc)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(8)
        if not out:
            break
        if kind == 0:
            for _ in range(rng.randint(1, 16)):
                at = rng.randrange(len(out))
                out[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] = rng.choice([0, 0xFF, 0x7F, 0x80, 1])
        elif kind == 2:
            del out[rng.randrange(len(out)) :]
        elif kind == 3:
            start = rng.randrange(len(out))
            block = out[start : start + rng.randint(1, 4096)]
            at = rng.randrange(len(out))
            out[at:at] = block * rng.randint(1, 8)
        elif kind == 4:
            out += b"\0" * rng.randint(1, 65536)
        elif kind == 5:
            _set_u32(out, rng)
        elif kind == 6:
            _huge_size(out, rng)
        else:
            start = rng.randrange(len(out))
            del out[start : start + rng.randint(1, 512)]
    return bytes(out)


def hostile_header(seed: Seed, rng: random.Random) -> Seed | None:
    """`seed` carrying a hostile medsr header, for the formats that have one."""
    from PIL import Image, PngImagePlugin

    fields = rng.choice(HOSTILE_HEADERS)
    text = json.dumps({"medsr": fields}) if rng.random() < 0.9 else "[" * 20_000
    if seed.suffix == ".npy":
        return Seed(seed.name, ".npy", seed.data, text.encode())
    if seed.name == "png16":
        info = PngImagePlugin.PngInfo()
        info.add_text("medsr", text)
        buffer = io.BytesIO()
        Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8)).save(
            buffer, format="PNG", pnginfo=info
        )
        return Seed(seed.name, ".png", buffer.getvalue())
    if seed.name == "tiff16":
        import tifffile

        buffer = io.BytesIO()
        tifffile.imwrite(buffer, np.ones((8, 8), np.uint16), description=text)
        return Seed(seed.name, ".tif", buffer.getvalue())
    if seed.suffix in (".nii", ".nii.gz"):
        import nibabel as nib

        image = nib.Nifti1Image(np.ones((4, 4, 2), np.float32), np.eye(4))
        image.header.extensions.append(nib.nifti1.Nifti1Extension(6, text.encode()))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"h{seed.suffix}"
            nib.save(image, str(path))
            return Seed(seed.name, seed.suffix, path.read_bytes())
    return None


SUFFIXES = (".dcm", ".png", ".tif", ".jpg", ".nii", ".nii.gz", ".npy", ".inv3", "")


def reader_case(corpus: list[Seed], rng: random.Random) -> Seed:
    """A mutated file for `medsr.io.read` (module doc)."""
    seed = rng.choice(corpus)
    roll = rng.random()
    if roll < 0.15 and (hostile := hostile_header(seed, rng)) is not None:
        return hostile
    data = mutate(seed.data, rng) if roll < 0.9 else seed.data
    suffix = rng.choice(SUFFIXES) if rng.random() < 0.1 else seed.suffix
    sidecar = seed.sidecar
    if sidecar is not None and rng.random() < 0.3:
        sidecar = mutate(sidecar, rng)
    return Seed(seed.name, suffix, data, sidecar)


# ---------------------------------------------------------------- running cases


@dataclass
class Tally:
    """Outcomes of one target."""

    outcomes: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    examples: dict[str, str] = field(default_factory=dict)
    rss_growth_mb: float = 0.0  # the most the process grew during a case, over its start

    def add(self, outcome: str, seconds: float, detail: str) -> None:
        self.outcomes[outcome] += 1
        self.slowest = max(self.slowest, seconds)
        if outcome not in ("accepted", "refused"):
            self.examples.setdefault(outcome, detail[:300])


def run_reader(case: Seed, folder: Path, timeout: float, tally: Tally) -> None:
    from medsr.io import MedsrIOError, read, read_limits

    path = folder / f"case{case.suffix}"
    path.write_bytes(case.data)
    if case.sidecar is not None:
        path.with_suffix(".json").write_bytes(case.sidecar)
    start = time.perf_counter()
    try:
        with deadline(timeout), read_limits(**READ_LIMITS), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(path)
        outcome, detail = "accepted", ""
    except Hang:
        outcome, detail = "hang", f"{case.name} {case.suffix}"
    except MedsrIOError as error:
        outcome, detail = "refused", str(error)
        if "\n" in str(error):
            outcome = "unhandled"  # the boundary promises one line
    except BaseException as error:  # noqa: BLE001 - every escape is what we count
        if isinstance(error, (KeyboardInterrupt, SystemExit)):
            raise
        outcome, detail = "unhandled", f"{case.name}: {type(error).__name__}: {error}"
    tally.add(outcome, time.perf_counter() - start, detail)
    for leftover in folder.iterdir():
        leftover.unlink()


def _web_models(folder: Path) -> dict[str, Any]:
    spec = importlib.util.spec_from_file_location("_web_conftest", ROOT / "tests/web/conftest.py")
    assert spec is not None and spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    from medsr.inference import Predictor
    from medsr.inference.fusion import FusionPredictor

    save = conftest.save_checkpoint
    # a plain x4 task: its consistency check is a resize, not the low-dose CT simulation
    ct = save(folder / "ct.pt", task="x4", scale=4, normalization=conftest.CT_WINDOW)
    xray = save(folder / "xray.pt", task="x2", scale=2, normalization=conftest.PERCENTILE)
    fusion = save(
        folder / "fusion.pt",
        task="petct",
        name="petct-fusion",
        normalization=conftest.PET_WINDOW,
        num_features=8,
        num_blocks=1,
    )
    models = {
        "ct": Predictor.load(str(ct)),
        "xray": Predictor.load(str(xray)),
        "petct": FusionPredictor.load(str(fusion)),
    }
    cts, pets = conftest.write_ct_pet(folder / "ct-pet", slices=2, shape=(24, 32))
    return {
        "models": models,
        "ct": [p.read_bytes() for p in cts],
        "pet": [p.read_bytes() for p in pets],
    }


WEB_KINDS = (".dcm", ".png", ".jpg", ".tif")


def _upload(corpus: list[Seed], rng: random.Random, name: str = "file") -> tuple[str, bytes, str]:
    seeds = [s for s in corpus if s.suffix in WEB_KINDS]
    seed = rng.choice(seeds)
    data = mutate(seed.data, rng) if rng.random() < 0.85 else seed.data
    return (f"{name}{seed.suffix}", data, "application/octet-stream")


def _form(
    rng: random.Random, model: str, odd_models: tuple[str, ...], downloads: tuple[str, ...]
) -> dict[str, str]:
    """Mostly the right model and no download; one case in ten something odd."""
    form = {"model": model}
    if rng.random() < 0.1:
        form["model"] = rng.choice(odd_models)
    if rng.random() < 0.15:
        form["download"] = rng.choice(downloads)
    return form


def enhance_request(
    corpus: list[Seed], rng: random.Random
) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Multipart files and form fields of one `POST /api/enhance` case."""
    ct_small = next(s for s in corpus if s.name == "CT_small.dcm")
    if rng.random() < 0.2:  # a series of mutated slices
        count = rng.randint(2, 4)
        files = [("files", (f"s{k}.dcm", mutate(ct_small.data, rng), "x")) for k in range(count)]
    else:
        files = [("files", _upload(corpus, rng))]
    if rng.random() < 0.1:
        files.append(("reference", _upload(corpus, rng, "ref")))
    model = "ct" if files[0][1][0].endswith(".dcm") and rng.random() < 0.7 else "xray"
    odd = ("petct", "", "nope")
    return files, _form(rng, model, odd, ("png", "dicom", "fused", "x" * 200))


def fuse_request(
    web: dict[str, Any], corpus: list[Seed], rng: random.Random
) -> tuple[list[tuple[str, Any]], dict[str, str]]:
    """Multipart files and form fields of one `POST /api/fuse` case."""
    files: list[tuple[str, Any]] = []
    for part in ("ct", "pet"):
        if rng.random() < 0.15:
            files.append((part, _upload(corpus, rng, part)))
            continue
        for k, data in enumerate(web[part]):
            mutated = mutate(data, rng) if rng.random() < 0.5 else data
            files.append((part, (f"{part}{k}.dcm", mutated, "x")))
    form = _form(rng, "petct", ("ct", "nope", ""), ("png", "dicom", "fused", "zip"))
    if rng.random() < 0.3:
        form["alpha"] = rng.choice(["0.3", "-1", "nan", "inf", "x", "1e309"])
    return files, form


def run_web(
    client: Any,
    route: str,
    request: tuple[list[tuple[str, Any]], dict[str, str]],
    timeout: float,
    tally: Tally,
) -> None:
    files, form = request
    start = time.perf_counter()
    try:
        with deadline(timeout), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            response = client.post(route, files=files, data=form)
        status = response.status_code
        if status == 500:
            outcome = "http500"
        elif status >= 400:
            is_json = response.headers.get("content-type", "").startswith("application/json")
            marked = response.headers.get("x-research-use-only") == "true"
            outcome = "refused" if is_json and marked and status < 500 else "unhandled"
        else:
            outcome = "accepted"
        detail = f"{status} {response.text[:200]}"
    except Hang:
        outcome, detail = "hang", route
    except Exception as error:  # noqa: BLE001
        outcome, detail = "unhandled", f"{type(error).__name__}: {error}"
    tally.add(outcome, time.perf_counter() - start, detail)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """The resident memory of this process now (Linux), else its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return peak_rss_mb()
    return pages * resource.getpagesize() / 2**20


def run(
    cases: int, seed: int = 0, timeout: float = 20.0, progress: bool = False
) -> dict[str, Tally]:
    """Run `cases` cases split over the three targets; returns a Tally per target."""
    import logging

    from fastapi.testclient import TestClient

    from medsr.web.app import create_app
    from medsr.web.limits import Settings

    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # it logs every bad tag
    rng = random.Random(seed)
    corpus = seeds()
    tallies = {"medsr.io.read": Tally(), "POST /api/enhance": Tally(), "POST /api/fuse": Tally()}
    with tempfile.TemporaryDirectory(prefix="medsr-fuzz-") as scratch:
        folder = Path(scratch)
        web = _web_models(folder)
        settings = Settings(timeout_s=timeout, max_pixels=4_000_000, keep_results=2)
        client = TestClient(create_app(web["models"], settings), base_url="http://127.0.0.1")
        cases_dir = folder / "cases"
        cases_dir.mkdir()
        baseline = rss_mb()
        for index in range(cases):
            roll = rng.random()
            if roll < 0.70:
                tally = tallies["medsr.io.read"]
                run_reader(reader_case(corpus, rng), cases_dir, timeout, tally)
            elif roll < 0.92:
                tally = tallies["POST /api/enhance"]
                run_web(client, "/api/enhance", enhance_request(corpus, rng), timeout, tally)
            else:
                tally = tallies["POST /api/fuse"]
                run_web(client, "/api/fuse", fuse_request(web, corpus, rng), timeout, tally)
            tally.rss_growth_mb = max(tally.rss_growth_mb, rss_mb() - baseline)
            if progress and (index + 1) % 100 == 0:
                print(f"... {index + 1} cases, peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr)
    return tallies


def table(tallies: dict[str, Tally]) -> str:
    names = ("accepted", "refused", "unhandled", "http500", "hang")
    rows = [
        "| target | cases | " + " | ".join(names) + " | slowest s | RSS growth MB |",
        "|---" * (len(names) + 4) + "|",
    ]
    for target, tally in tallies.items():
        counts = " | ".join(str(tally.outcomes[n]) for n in names)
        cases = sum(tally.outcomes.values())
        rows.append(
            f"| {target} | {cases} | {counts} | {tally.slowest:.2f} | {tally.rss_growth_mb:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds before a hang")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    start, cpu = time.perf_counter(), time.process_time()
    tallies = run(args.cases, args.seed, args.timeout, progress=True)
    print(table(tallies))
    print(
        f"\n{args.cases} cases, seed {args.seed}, {time.perf_counter() - start:.0f} s "
        f"({time.process_time() - cpu:.0f} s CPU), peak RSS {peak_rss_mb():.0f} MB"
    )
    for target, tally in tallies.items():
        for outcome, example in tally.examples.items():
            print(f"{target} {outcome}: {example}")


if __name__ == "__main__":
    main()
