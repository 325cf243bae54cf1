"""`medsr pacs` against a real Orthanc (DICOMweb plugin): end to end, restarts, watch mode,
and two torchrun processes. Seeded with real CT (pydicom's CT_small) and radiographs
(pydicom-data's RG1 and RG3 through medsr's sample registry)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from typer.testing import CliRunner

from medsr.cli import app
from medsr.io.samples import is_available, sample_path
from medsr.pacs.run import EXIT_AFTER_STOW_ENV
from tests.pacs.orthanc import Orthanc, ct_series, ct_small

MODEL = "ct-ldct"
RADIOGRAPHS = ("xray-chest-rg1", "xray-extremity-rg3")
runner = CliRunner()


def medsr(server: Orthanc, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsr.cli", *pacs_args(server, state), *args],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def pacs_args(server: Orthanc, state: Path) -> list[str]:
    return ["pacs", server.dicomweb, "--model", MODEL, "--state", str(state)]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def done_rows(state: Path) -> int:
    if not state.exists():
        return 0
    with sqlite3.connect(state, timeout=30) as db:
        return int(db.execute("SELECT COUNT(*) FROM series WHERE status = 'done'").fetchone()[0])


def derived_of(server: Orthanc, study_uid: str, sources: set[str]) -> dict[str, list[Dataset]]:
    """Source SeriesInstanceUID -> the derived series' datasets, checking that every derived
    series references exactly one source series and that no source has two."""
    found: dict[str, list[Dataset]] = {}
    for uid in set(server.series_uids(study_uid)) - sources:
        datasets = server.datasets(uid)
        referenced = {
            ref.ReferencedSOPInstanceUID for ds in datasets for ref in ds.SourceImageSequence
        }
        owners = {
            source
            for source in sources
            if referenced & {ds.SOPInstanceUID for ds in server.datasets(source)}
        }
        assert len(owners) == 1, f"derived series {uid} references {owners}"
        (owner,) = owners
        assert owner not in found, f"source series {owner} was enhanced twice"
        found[owner] = datasets
    return found


@pytest.mark.usefixtures("one_thread")
def test_end_to_end_ct_enhanced_into_its_study(
    orthanc: Orthanc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ct_small()
    orthanc.upload(source)
    radiographs = [name for name in RADIOGRAPHS if is_available(name)]
    if os.environ.get("MEDSR_REQUIRE_PACS"):
        assert radiographs == list(RADIOGRAPHS), "pydicom-data is part of make setup"
    for name in radiographs:
        orthanc.upload(sample_path(name))
    before = orthanc.snapshot()
    studies_before = {study: orthanc.series_uids(study) for study in orthanc.study_uids()}
    user, password = orthanc.auth
    monkeypatch.setenv("MEDSR_PACS_USERNAME", user)
    monkeypatch.setenv("MEDSR_PACS_PASSWORD", password)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    state = tmp_path / "state.sqlite"

    # the dry run lists every image series of the selection and changes nothing
    listing = runner.invoke(app, [*pacs_args(orthanc, state), "--patient-id", "*", "--dry-run"])
    assert listing.exit_code == 0, listing.output
    assert source.SeriesInstanceUID in listing.output
    assert f"{1 + len(radiographs)} series to process" in listing.output
    assert not state.exists() and orthanc.snapshot() == before

    ct_only = runner.invoke(app, [*pacs_args(orthanc, state), "--modality", "CT", "--dry-run"])
    assert "1 series to process, 0 already done" in ct_only.output

    run = runner.invoke(app, [*pacs_args(orthanc, state), "--modality", "CT", "--date", "20040119"])
    assert run.exit_code == 0, run.output
    assert "1 series enhanced and stored (1 instances sent), 0 already done, 0 failed" in run.output

    # the source study gained one series; nothing that was there changed
    after = orthanc.snapshot()
    assert {k: after[k] for k in before} == before
    study = source.StudyInstanceUID
    series = orthanc.series_uids(study)
    assert len(series) == 2 and series[source.SeriesInstanceUID] == 1
    (derived_uid,) = set(series) - {source.SeriesInstanceUID}
    (derived,) = orthanc.datasets(derived_uid)
    assert derived.StudyInstanceUID == study and derived.PatientID == source.PatientID
    assert derived.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert derived.SOPInstanceUID != source.SOPInstanceUID
    assert derived.SOPClassUID == source.SOPClassUID  # CT Image Storage
    assert list(derived.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert derived.SeriesDescription.startswith("medsr RESEARCH USE ONLY")
    assert MODEL in derived.DerivationDescription and "RESEARCH USE ONLY" in derived.ImageComments
    (reference,) = derived.SourceImageSequence
    assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert reference.ReferencedSOPClassUID == source.SOPClassUID
    assert reference.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    # geometry: x1 denoiser, same grid
    assert (derived.Rows, derived.Columns) == (source.Rows, source.Columns)
    np.testing.assert_allclose(
        [float(v) for v in derived.PixelSpacing], [float(v) for v in source.PixelSpacing], rtol=1e-5
    )
    np.testing.assert_allclose(
        [float(v) for v in derived.ImagePositionPatient],
        [float(v) for v in source.ImagePositionPatient],
        atol=1e-3,
    )
    np.testing.assert_allclose(
        [float(v) for v in derived.ImageOrientationPatient],
        [float(v) for v in source.ImageOrientationPatient],
        atol=1e-5,
    )
    # HU kept on the same scale, and the image really went through the model
    hu_in = pydicom.pixels.apply_modality_lut(source.pixel_array, source).astype(float)
    hu_out = pydicom.pixels.apply_modality_lut(derived.pixel_array, derived).astype(float)
    assert abs(hu_out.mean() - hu_in.mean()) < 30.0
    assert np.abs(hu_out - hu_in).mean() > 0.5
    # the radiograph studies are untouched
    assert len(studies_before) == 1 + len(radiographs)
    for other, its_series in studies_before.items():
        assert other == study or orthanc.series_uids(other) == its_series

    # a second run finds it done, and never takes the derived series as a source
    again = runner.invoke(app, [*pacs_args(orthanc, state), "--modality", "CT"])
    assert "0 series enhanced and stored (0 instances sent), 1 already done" in again.output
    assert orthanc.series_uids(study) == series


def test_killed_while_storing_resumes_exactly_once(orthanc: Orthanc, tmp_path: Path) -> None:
    """The worst moment: 2 of 3 derived instances on the PACS, the state not yet done."""
    slices = ct_series(3)
    for ds in slices:
        orthanc.upload(ds)
    source_uid = slices[0].SeriesInstanceUID
    state = tmp_path / "state.sqlite"
    args = ["--series", source_uid, "--stow-batch", "2"]
    crashed = subprocess.run(
        [sys.executable, "-m", "medsr.cli", *pacs_args(orthanc, state), *args],
        env={**orthanc.env, EXIT_AFTER_STOW_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crashed.returncode == 70, crashed.stderr[-2000:]
    study = slices[0].StudyInstanceUID
    partial = orthanc.series_uids(study)
    assert sorted(partial.values()) == [2, 3]  # half stored
    assert done_rows(state) == 0

    resumed = medsr(orthanc, state, *args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "1 series enhanced and stored (1 instances sent)" in resumed.stdout
    series = orthanc.series_uids(study)
    assert set(series) == set(partial) and sorted(series.values()) == [3, 3]
    (derived,) = derived_of(orthanc, study, {source_uid}).values()
    referenced = [ds.SourceImageSequence[0].ReferencedSOPInstanceUID for ds in derived]
    assert referenced == [ds.SOPInstanceUID for ds in slices]  # each slice its own source
    z = [float(ds.ImagePositionPatient[2]) for ds in derived]
    np.testing.assert_allclose(z, [float(ds.ImagePositionPatient[2]) for ds in slices], atol=1e-3)


def test_sigkill_and_restart_process_each_series_once(orthanc: Orthanc, tmp_path: Path) -> None:
    sources = {}
    for seed in range(4):
        (ds,) = ct_series(1, seed=seed)
        orthanc.upload(ds)
        sources[ds.SeriesInstanceUID] = ds
    study = ct_small().StudyInstanceUID
    state = tmp_path / "state.sqlite"
    process = subprocess.Popen(
        [sys.executable, "-m", "medsr.cli", *pacs_args(orthanc, state), "--modality", "CT"],
        env=orthanc.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while done_rows(state) < 1 and process.poll() is None:
        assert time.monotonic() < deadline, "no series done in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    first = done_rows(state)
    assert first >= 1

    restarted = medsr(orthanc, state, "--modality", "CT")
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert f"{4 - first} series enhanced and stored" in restarted.stdout
    assert f"{first} already done, 0 failed" in restarted.stdout
    derived = derived_of(orthanc, study, set(sources))
    assert set(derived) == set(sources)
    assert all(len(datasets) == 1 for datasets in derived.values())


def test_watch_processes_new_series_once(orthanc: Orthanc, tmp_path: Path) -> None:
    (first,) = ct_series(1, seed=1)
    orthanc.upload(first)
    state = tmp_path / "state.sqlite"
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medsr.cli",
            *pacs_args(orthanc, state),
            "--modality",
            "CT",
            "--watch",
            "--interval",
            "0.3",
        ],
        env=orthanc.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a default SIGINT in the child whatever this process inherited or set (an ignored
        # SIGINT is inherited, and Python then installs no KeyboardInterrupt handler)
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 240
        while done_rows(state) < 1:
            assert watch.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        (second,) = ct_series(1, seed=2)
        orthanc.upload(second)
        while done_rows(state) < 2:
            assert watch.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.5)  # a few more polls: nothing new, the outputs are not sources
    finally:
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=60)
    assert watch.returncode == 130, err[-2000:]
    assert out.count("stored series") == 2
    sources = {first.SeriesInstanceUID, second.SeriesInstanceUID}
    derived = derived_of(orthanc, first.StudyInstanceUID, sources)
    assert set(derived) == sources
    assert len(orthanc.series_uids(first.StudyInstanceUID)) == 4


def test_torchrun_two_processes_share_the_series(orthanc: Orthanc, tmp_path: Path) -> None:
    sources = set()
    for seed in range(4):
        (ds,) = ct_series(1, seed=seed)
        orthanc.upload(ds)
        sources.add(ds.SeriesInstanceUID)
    state = tmp_path / "state.sqlite"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc-per-node=2",
            "--standalone",
            "-m",
            "medsr.cli",
            *pacs_args(orthanc, state),
            "--modality",
            "CT",
        ],
        env=orthanc.env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("medsr pacs: 4 series enhanced and stored") == 1
    assert "2 processes (rank 0: 2, rank 1: 2)" in done.stdout
    assert sorted(
        line.split()[-1] for line in done.stdout.splitlines() if line.startswith("stored")
    ) == sorted(sources)
    derived = derived_of(orthanc, ct_small().StudyInstanceUID, sources)
    assert set(derived) == sources
