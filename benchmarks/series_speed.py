"""A whole CT series through `medsr enhance`, end to end: read, enhance, write DICOM (issue 17).

Run: `python benchmarks/series_speed.py [--slices 300] [--model ct-ldct] [--threads 2]`.

The series: the bundled pydicom-data abdomen slice (explicit_VR-UN, 512^2, 0.86 mm) written
`--slices` times as one DICOM series (new UIDs, positions 1 mm apart) in a temporary folder.
Then `medsr enhance SERIES -o OUT --model MODEL --format dicom` runs as a user runs it (a new
process: Python start-up, model load, reading, the model, the derived-DICOM writer), timed
by the wall clock; the output is checked to hold one DICOM file per slice. Printed: seconds
in all, per slice, and the issue's target (a 300-slice series in < 3 minutes), with the
machine's load before the run. The CLI's own timing line (model seconds) is printed too.
"""

from __future__ import annotations

import argparse
import copy
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from medsr.io.samples import sample_path

TARGET_SECONDS_300 = 180.0


def write_series(folder: Path, slices: int) -> None:
    """`slices` copies of the abdomen slice as one series, 1 mm apart."""
    source = pydicom.dcmread(sample_path("ct-abdomen"))
    series, study = generate_uid(), generate_uid()
    frame = generate_uid()
    x, y, z = (float(v) for v in source.ImagePositionPatient)
    for index in range(slices):
        dataset = copy.deepcopy(source)
        dataset.SeriesInstanceUID, dataset.StudyInstanceUID = series, study
        dataset.FrameOfReferenceUID = frame
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.InstanceNumber = index + 1
        dataset.ImagePositionPatient = [x, y, z + index]
        dataset.SliceLocation = z + index
        dataset.SliceThickness = 1.0
        dataset.save_as(folder / f"slice_{index:04d}.dcm", enforce_file_format=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--model", default="ct-ldct")
    parser.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        series, output = root / "series", root / "out"
        series.mkdir()
        write_series(series, arguments.slices)
        medsr = Path(sys.executable).with_name("medsr")
        command = [str(medsr), "enhance", str(series), "-o", str(output)]
        command += ["--model", arguments.model, "--format", "dicom"]
        environment = {**os.environ, "OMP_NUM_THREADS": str(arguments.threads)}
        load = os.getloadavg()[0]
        start = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, env=environment)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            sys.exit(f"medsr enhance failed ({run.returncode}): {run.stderr.strip()[-500:]}")
        written = [p for p in output.rglob("*") if p.is_file() and p.suffix.lower() == ".dcm"]
    print(run.stdout.strip().splitlines()[-1] if run.stdout.strip() else "")
    print(
        f"\n{arguments.slices} slices of 512^2, {arguments.model}, {arguments.threads} threads "
        f"(OMP_NUM_THREADS), load {load:.1f} before the run\n"
    )
    print("| slices | seconds, end to end | seconds per slice | DICOM files written | target |")
    print("|---|---|---|---|---|")
    target = TARGET_SECONDS_300 * arguments.slices / 300
    verdict = "met" if seconds < target else f"missed x{seconds / target:.2f}"
    print(
        f"| {arguments.slices} | {seconds:.1f} | {seconds / arguments.slices:.3f} "
        f"| {len(written)} | < {target:.0f} s: {verdict} |"
    )
    if len(written) != arguments.slices:
        sys.exit(f"expected {arguments.slices} DICOM files, found {len(written)}")


if __name__ == "__main__":
    main()
