"""Geometric self-ensemble: a model averaged over the 8 flips and rotations of its input.

EDSR's "+" (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution",
CVPRW 2017, section 4.3): each batch of tiles goes through the model 8 times, as it is and
under the 7 other symmetries of the square (rotations by 90, 180, 270 degrees, each with and
without a left-right flip); each output is turned back and the 8 are averaged. A model
trained on flipped and rotated patches is nearly equivariant, so the average keeps the image
and cancels part of each pass's own error: on the real quarter-dose pairs of
`benchmarks/ct_real_dose.py` about +0.1 dB for `ct-ldct`, for 8x the time.
"""

from __future__ import annotations

import numpy as np

from medsr.image import NUM_DIHEDRAL, dihedral, undo_dihedral
from medsr.inference.tiling import Runner


def self_ensemble(run: Runner) -> Runner:
    """`run` averaged over the 8 symmetries of each batch (`medsr.image.dihedral`, the
    training augmentation's; float32, same shape as `run`'s output); tiles need not be
    square."""

    def run_ensemble(batch: np.ndarray) -> np.ndarray:
        total: np.ndarray | None = None
        for index in range(NUM_DIHEDRAL):
            output = undo_dihedral(run(np.ascontiguousarray(dihedral(batch, index))), index)
            total = output.astype(np.float32) if total is None else total + output
        assert total is not None
        return total / np.float32(NUM_DIHEDRAL)

    return run_ensemble
