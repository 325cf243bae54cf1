"""benchmarks/ct_quiet_head.py: the head made at the training sources' pixel size."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from medsr.io import read
from medsr.io.samples import load_sample
from tests.benchmark_scripts import BENCHMARKS, load_benchmark


def test_the_head_at_096mm_is_the_2x2_mean_with_padding_as_air(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports ct_real_dose as a sibling
    try:
        quiet_head = load_benchmark("ct_quiet_head")
    finally:
        sys.path.remove(str(BENCHMARKS))
    coarse = read(quiet_head.head_at_096mm(tmp_path))
    head = load_sample("ct-head-693")
    assert coarse.shape == (256, 256) and coarse.modality == "CT" and coarse.unit == "HU"
    np.testing.assert_allclose(coarse.spacing, np.asarray(head.spacing) * 2, rtol=1e-5)
    air = np.where(head.array < -1500, -1000.0, head.array)
    np.testing.assert_array_equal(coarse.array[100, 100], np.rint(air[200:202, 200:202].mean()))
    assert coarse.array.min() >= -1024  # the padding is air in it, not -3024
