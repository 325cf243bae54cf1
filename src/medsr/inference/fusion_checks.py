"""What `FusionPredictor.fuse` checks before putting a PET on a CT: same patient, same frame
of reference, a regular grid, and a PET in SUV.

* `check_same_patient`: the CT and the PET must carry the same PatientID and
  FrameOfReferenceUID (DICOM metadata). A mismatch is refused unless `allow_mismatch`; then
  it is warned about and returned as a note that the derived header states. Images without
  these identifiers (PNG, NIfTI of unknown origin) cannot be checked: a warning and a note
  say so. Overlap in patient coordinates is checked apart (`resample.check_overlap`).
* `pet_in_suv`: SUV stays SUV; Bq/mL is converted to body-weight SUV with decay correction
  (`physics.pet_units.to_suv_bw`; refused when a needed tag is missing); any other unit is
  kept as it is (never relabelled SUV) with a warning that the model expects SUV.
"""

from __future__ import annotations

import warnings

from medsr.image import Volume
from medsr.io.slice_geometry import check_regular_grid
from medsr.physics.pet_units import to_suv_bw

IDENTIFIERS = ("PatientID", "FrameOfReferenceUID")


def check_same_patient(ct: Volume, pet: Volume, allow_mismatch: bool = False) -> list[str]:
    """Notes for the derived header (empty when both identifiers match); ValueError naming
    the differing values when they do not and `allow_mismatch` is False."""
    differ, unknown = [], []
    for key in IDENTIFIERS:
        ct_value, pet_value = ct.metadata.get(key), pet.metadata.get(key)
        if not ct_value or not pet_value:
            unknown.append(key)
        elif str(ct_value) != str(pet_value):
            differ.append(f"{key} CT {ct_value!r} vs PET {pet_value!r}")
    notes = []
    if differ:
        if not allow_mismatch:
            raise ValueError(
                f"CT and PET are not of the same patient and frame of reference "
                f"({'; '.join(differ)}); pass --allow-mismatch to fuse them anyway "
                "(the output then says so)"
            )
        notes.append(f"CT and PET fused despite different {'; '.join(differ)} (--allow-mismatch)")
    if unknown:
        notes.append(
            f"CT and PET identity not checked: {', '.join(unknown)} missing in one of them"
        )
    for note in notes:
        warnings.warn(note, stacklevel=3)
    return notes


def check_regular_grids(ct: Volume, pet: Volume) -> None:
    """ValueError when the CT or the PET is a tilted or unevenly spaced series: resampling
    the PET onto the CT's grid needs one spacing and origin for each."""
    check_regular_grid(ct.metadata, "fusion (CT)")
    check_regular_grid(pet.metadata, "fusion (PET)")


def pet_in_suv(pet: Volume) -> Volume:
    """`pet` in SUV when it can be (module doc); otherwise unchanged, with a warning."""
    if pet.unit == "BQML":
        return to_suv_bw(pet)
    if pet.unit not in ("SUV", "a.u."):
        warnings.warn(
            f"the model expects PET in SUV, got {pet.unit!r}; the output keeps that unit",
            stacklevel=3,
        )
    return pet
