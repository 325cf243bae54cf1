"""Every shipped model gives the outputs stored before (tests/inference/reference_outputs/).

The references are written by `make_reference_outputs.py` (see its doc: regenerate a model's
file only when its weights change on purpose). The tolerance is 5e-5 of the reference's value
range (about 5e-5 in the model's own [0, 1] units): a refactoring, or another CPU, may reorder
float32 arithmetic (oneDNN picks other kernels with AVX-512 than with AVX2: `ct-ldct-x2`'s
references, written on an AVX2 CPU, differed by 1.03e-5 of the range on an AVX-512 one), but
it may not change what the model computes (the sixteenth session's 3000-step `ct-ldct`
fine-tune moved them by 2e-3 to 4e-2 of the range).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr.inference.registry import MODELS
from tests.inference.make_reference_outputs import reference_cases, reference_path

TOLERANCE = 5e-5


@pytest.mark.parametrize("name", list(MODELS))
def test_shipped_model_matches_its_stored_reference_outputs(name: str) -> None:
    path = reference_path(name)
    assert path.is_file(), f"no reference for {name}: run make_reference_outputs.py {name}"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cases = reference_cases(name)
        with np.load(path) as stored:
            assert sorted(stored.files) == sorted(cases)
            for case, run in cases.items():
                reference = stored[case]
                output = np.asarray(run())
                assert output.shape == reference.shape, case
                value_range = float(reference.max() - reference.min())
                error = float(np.abs(output - reference).max())
                assert error <= TOLERANCE * value_range, (
                    f"{name}/{case}: max |output - reference| = {error:.3g} > "
                    f"{TOLERANCE} x range {value_range:.4g}"
                )
    finally:
        torch.set_num_threads(threads)
