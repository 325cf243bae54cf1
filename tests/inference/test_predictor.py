from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from medsr._version import __version__
from medsr.image import Volume, Window
from medsr.inference import MODELS, Predictor, resolve_model
from medsr.inference.predictor import AIR_HU
from medsr.inference.registry import ModelEntry, available_models
from medsr.physics.resize import upsample
from tests.inference.conftest import CT_WINDOW, PERCENTILE, TINY


def bicubic(image: np.ndarray, scale: int) -> np.ndarray:
    return upsample(torch.from_numpy(image.astype(np.float32)), scale, "bicubic").numpy()


def test_load_reads_provenance(make_checkpoint: Callable[..., Path]) -> None:
    path = make_checkpoint(task="ldct-x4", scale=4)
    predictor = Predictor.load(str(path))
    assert (predictor.scale, predictor.task, predictor.model_name) == (
        4,
        "ldct-x4",
        "tiny-srresnet-ldct-x4",
    )
    assert predictor.checkpoint_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert predictor.medsr_version == __version__
    with pytest.raises(ValueError, match="backend must be one of"):
        Predictor.load(str(path), backend="tensorrt")


def test_window_normalisation_is_applied_and_inverted(make_checkpoint: Callable[..., Path]) -> None:
    """A model that is exactly bicubic in [0, 1] units must give bicubic in HU."""
    predictor = Predictor.load(str(make_checkpoint(bicubic=True)))
    rng = np.random.default_rng(0)
    image = rng.normal(40.0, 400.0, (40, 52)).clip(-1024.0).astype(np.float32)  # no padding
    result = predictor.enhance_array(image, tile_size=None)
    assert result.shape == (160, 208)
    assert np.abs(result - bicubic(image, 4)).max() < 0.05  # HU; float32 rounding only


def test_ct_padding_outside_the_field_of_view_is_air_to_the_model_and_kept(
    make_checkpoint: Callable[..., Path],
) -> None:
    predictor = Predictor.load(str(make_checkpoint()))  # x4, CT window in HU
    rng = np.random.default_rng(2)
    image = rng.normal(-1000.0, 20.0, (48, 48)).astype(np.float32)  # air ...
    image[12:36, 12:36] = rng.normal(40.0, 20.0, (24, 24))  # ... around a patient
    rows, cols = np.mgrid[:48, :48]
    outside = (rows - 23.5) ** 2 + (cols - 23.5) ** 2 > 22**2  # the field of view's circle
    stored_as_air = np.where(outside, np.float32(AIR_HU), image)
    padded = np.where(outside, np.float32(-3024.0), image)  # e.g. PixelPaddingValue -2000
    assert predictor.padding(stored_as_air) is None
    reference = predictor.enhance_array(stored_as_air, tile_size=None)
    result = predictor.enhance_array(padded, tile_size=None)
    # at x4 the padding is kept where a low pixel and its 8 neighbours are padding
    kept = np.kron(ndimage.binary_erosion(outside, border_value=1), np.ones((4, 4), dtype=bool))
    np.testing.assert_array_equal(result[~kept], reference[~kept])  # no rim, no band
    assert (result[kept] == -3024.0).all() and kept.sum() > 0.8 * 16 * outside.sum()
    denoiser = Predictor.load(str(make_checkpoint(task="ldct", scale=1)))
    result = denoiser.enhance_array(padded, tile_size=None)
    np.testing.assert_array_equal(result[outside], padded[outside])  # x1: all of it
    percentile = Predictor.load(str(make_checkpoint(task="xray-x4", normalization=PERCENTILE)))
    assert percentile.padding(padded) is None  # not HU: values are what they are


def test_percentile_normalisation_round_trips(make_checkpoint: Callable[..., Path]) -> None:
    predictor = Predictor.load(
        str(make_checkpoint(bicubic=True, task="xray-x4", normalization=PERCENTILE))
    )
    image = (np.random.default_rng(1).random((30, 20)) * 3000 + 500).astype(np.float32)
    result = predictor.enhance_array(image, tile_size=16, overlap=8)
    assert np.abs(result - bicubic(image, 4)).max() < 0.05


def test_enhance_volume_geometry_and_metadata(make_checkpoint: Callable[..., Path]) -> None:
    predictor = Predictor.load(str(make_checkpoint(bicubic=True, scale=2, task="x2")))
    direction = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    volume = Volume(
        np.random.default_rng(2).normal(0, 100, (3, 20, 24)),
        spacing=(2.5, 0.8, 0.6),
        modality="CT",
        unit="HU",
        window=Window(40, 400),
        origin=(10.0, -5.0, 3.0),
        direction=direction,
        metadata={"PatientID": "P1"},
    )
    out = predictor.enhance(volume)
    assert out.shape == (3, 40, 48) and out.spacing == (2.5, 0.4, 0.3)
    # the mean position of the 2 x 2 output pixels of input pixel (0, 0) is its centre
    first_input = volume.affine @ np.array([0, 0, 0, 1.0])
    centre = out.affine @ np.array([0.5, 0.5, 0, 1.0])
    np.testing.assert_allclose(centre, first_input, atol=1e-9)
    np.testing.assert_allclose(out.array[1], bicubic(volume.array[1], 2), atol=0.02)
    info = out.metadata["inference"]
    assert info["checkpoint_sha256"] == predictor.checkpoint_sha256
    assert info["research_use_only"] is True and out.metadata["research_use_only"] is True
    assert out.metadata["PatientID"] == "P1" and out.window == volume.window
    assert volume.shape == (3, 20, 24)  # the input is untouched


def test_ct_model_refuses_images_not_in_hu(make_checkpoint: Callable[..., Path]) -> None:
    predictor = Predictor.load(str(make_checkpoint()))
    with pytest.raises(ValueError, match="expects CT in HU.*--modality CT --unit HU"):
        predictor.enhance(Volume(np.zeros((8, 8)), spacing=(1.0, 1.0), unit="a.u."))
    with pytest.raises(ValueError, match=r"expects CT in HU, got an image in 'Bq/ml'") as error:
        predictor.enhance(Volume(np.zeros((8, 8)), spacing=(1.0, 1.0), unit="Bq/ml"))
    assert "--unit" not in str(error.value)  # a unit the file states is not a missing one


def test_registry_names_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(MODELS) >= {"ct-ldct-x4", "xray-x4", "fusion-petct-x4"}
    planned = ModelEntry("not-yet", "not-yet.pt", "x4", "a planned model without weights")
    monkeypatch.setitem(MODELS, "not-yet", planned)
    assert "not-yet" not in available_models()
    with pytest.raises(FileNotFoundError, match="registered but its weights are not installed"):
        resolve_model("not-yet")
    with pytest.raises(FileNotFoundError, match="registered names: .*not-yet"):
        resolve_model("no-such-model")
    (tmp_path / "m.pt").write_bytes(b"x")
    assert resolve_model(str(tmp_path / "m.pt")) == tmp_path / "m.pt"
    monkeypatch.setattr("medsr.inference.registry.WEIGHTS_DIR", tmp_path)
    (tmp_path / "not-yet.pt").write_bytes(b"x")
    assert resolve_model("not-yet") == tmp_path / "not-yet.pt"


def test_a_trained_checkpoint_loads_and_runs(tmp_path: Path) -> None:
    """End to end with a checkpoint written by `medsr.training.train` (4 steps, x2)."""
    from medsr.io.samples import is_available, load_sample
    from medsr.training import train
    from medsr.training.config import config_from_dict
    from tests.training.conftest import TINY

    if not is_available("invesalius-head-ct"):
        pytest.skip("needs the InVesalius sample")
    threads = torch.get_num_threads()
    try:
        config = config_from_dict(
            TINY,
            [
                "training.max_steps=4",
                "intervals.checkpoint_every=4",
                "intervals.validate_every=4",
                "data.num_validation=8",
            ],
        )
        result = train(config, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    predictor = Predictor.load(str(result["checkpoint"]))
    assert (predictor.task, predictor.scale) == ("x2", 2)
    image = load_sample("invesalius-head-ct").slice(90)
    out = predictor.enhance(image)
    assert out.shape == (512, 512) and out.unit == "HU"
    # 4 steps from a bicubic-skip init: still close to bicubic, in HU, not in [0, 1]
    assert np.abs(out.array - bicubic(image.array, 2)).mean() < 100.0
    assert out.array.max() > 500.0


def _enhanced_with_batches(
    predictor: Predictor, image: np.ndarray
) -> tuple[np.ndarray, list[np.ndarray]]:
    """`image` enhanced in 32-pixel tiles, and every batch the model was given (its inputs)."""
    seen: list[np.ndarray] = []
    run = predictor.run

    def recording(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.copy())
        return run(batch)

    predictor.run = recording
    try:
        return predictor.enhance_array(image, tile_size=32, overlap=8), seen
    finally:
        predictor.run = run


def test_a_non_blind_model_gets_the_image_noise_level_as_a_second_channel(
    make_checkpoint: Callable[..., Path],
) -> None:
    from medsr.metrics.noise import estimate_noise_sd

    norm = {**CT_WINDOW, "noise_level_unit": 50.0}
    path = make_checkpoint(task="ldct", scale=1, normalization=norm, in_channels=2, **TINY)
    predictor = Predictor.load(str(path))
    rng = np.random.default_rng(2)
    image = (40.0 + rng.normal(0.0, 20.0, (64, 80))).astype(np.float32)
    output, seen = _enhanced_with_batches(predictor, image)
    assert output.shape == image.shape and np.isfinite(output).all()
    level = estimate_noise_sd(image, "CT")[0]
    assert level == pytest.approx(20.0, rel=0.15)
    assert sum(len(b) for b in seen) > 1  # every tile gets the whole image's level
    for batch in seen:
        assert batch.shape[1] == 2
        assert np.allclose(batch[:, 1], level / 50.0)
    # a model told the noise to remove gets the input's noise x sqrt(1 - dose fraction)
    told = {**norm, "noise_level_dose_fraction": 0.25}
    path = make_checkpoint(task="ldct", scale=1, normalization=told, in_channels=2, **TINY)
    assert Predictor.load(str(path)).noise_level(image) == pytest.approx(level * 0.75**0.5)
    # a 2-channel model without the noise level in its normalisation is refused
    with pytest.raises(ValueError, match="2-channel"):
        Predictor.load(str(make_checkpoint(task="ldct", scale=1, in_channels=2, **TINY)))


def test_a_kernel_aware_model_gets_the_noise_frequency_as_a_third_channel(
    make_checkpoint: Callable[..., Path],
) -> None:
    from scipy import ndimage

    from medsr.metrics.noise import estimate_noise

    norm = {**CT_WINDOW, "noise_level_unit": 50.0, "noise_frequency_unit": 0.5}
    path = make_checkpoint(task="ldct", scale=1, normalization=norm, in_channels=3, **TINY)
    predictor = Predictor.load(str(path))
    rng = np.random.default_rng(2)
    white = rng.normal(0.0, 20.0, (64, 80))
    smooth = ndimage.gaussian_filter(white, 1.0) * 3.0  # a smooth kernel's grain
    for noise in (white, smooth):
        image = (40.0 + noise).astype(np.float32)
        output, seen = _enhanced_with_batches(predictor, image)
        assert np.isfinite(output).all()
        estimate = estimate_noise(image, "CT")
        for batch in seen:
            assert batch.shape[1] == 3
            assert np.allclose(batch[:, 1], estimate.sd / 50.0)
            assert np.allclose(batch[:, 2], estimate.mean_frequency / 0.5)
    white_f, smooth_f = (estimate_noise(40.0 + n, "CT").mean_frequency for n in (white, smooth))
    assert white_f > 0.3 > smooth_f
    # a 3-channel model without the frequency in its normalisation is refused
    with pytest.raises(ValueError, match="3-channel"):
        norm2 = {**CT_WINDOW, "noise_level_unit": 50.0}
        path = make_checkpoint(task="ldct", scale=1, normalization=norm2, in_channels=3, **TINY)
        Predictor.load(str(path))


def test_a_dose_aware_model_gets_the_stated_dose_as_a_fourth_channel(
    make_checkpoint: Callable[..., Path],
) -> None:
    from medsr.metrics.noise import estimate_noise

    norm = {
        **CT_WINDOW,
        "noise_level_unit": 50.0,
        "noise_level_dose_fraction": 0.25,
        "noise_frequency_unit": 0.5,
        "dose_input": True,
    }
    path = make_checkpoint(task="ldct", scale=1, normalization=norm, in_channels=4, **TINY)
    predictor = Predictor.load(str(path))
    image = (40.0 + np.random.default_rng(4).normal(0.0, 20.0, (64, 80))).astype(np.float32)
    estimate = estimate_noise(image, "CT")
    # by default the dose the model was trained for; --dose states another
    for told, dose in ((predictor, 0.25), (predictor.with_noise_options(dose_fraction=0.1), 0.1)):
        output, seen = _enhanced_with_batches(told, image)
        assert np.isfinite(output).all()
        for batch in seen:
            assert batch.shape[1] == 4
            assert np.allclose(batch[:, 1], estimate.sd * (1 - dose) ** 0.5 / 50.0)
            assert np.allclose(batch[:, 3], dose)
    # a 4-channel model without the dose input in its normalisation is refused
    with pytest.raises(ValueError, match="4-channel"):
        norm3 = {key: value for key, value in norm.items() if key != "dose_input"}
        path = make_checkpoint(task="ldct", scale=1, normalization=norm3, in_channels=4, **TINY)
        Predictor.load(str(path))


def test_a_non_blind_x2_model_measures_its_noise_channels_on_the_low_input(
    make_checkpoint: Callable[..., Path],
) -> None:
    from medsr.metrics.noise import estimate_noise

    norm = {**CT_WINDOW, "noise_level_unit": 50.0, "noise_frequency_unit": 0.5}
    path = make_checkpoint(task="ldct-x2", scale=2, normalization=norm, in_channels=3, **TINY)
    predictor = Predictor.load(str(path))
    image = (40.0 + np.random.default_rng(3).normal(0.0, 20.0, (64, 80))).astype(np.float32)
    output, seen = _enhanced_with_batches(predictor, image)
    assert output.shape == (128, 160) and np.isfinite(output).all()
    estimate = estimate_noise(image, "CT")
    for batch in seen:
        assert batch.shape[1] == 3 and batch.shape[2] <= 64
        assert np.allclose(batch[:, 1], estimate.sd / 50.0)
        assert np.allclose(batch[:, 2], estimate.mean_frequency / 0.5)


def test_dose_and_strength_set_a_non_blind_denoisers_noise_level(
    make_checkpoint: Callable[..., Path],
) -> None:
    from medsr.metrics.noise import estimate_noise_sd

    image = (40.0 + np.random.default_rng(4).normal(0.0, 20.0, (64, 80))).astype(np.float32)
    level = estimate_noise_sd(image, "CT")[0]
    told = {**CT_WINDOW, "noise_level_unit": 50.0, "noise_level_dose_fraction": 0.25}
    path = make_checkpoint(task="ldct", scale=1, normalization=told, in_channels=2, **TINY)
    predictor = Predictor.load(str(path))
    assert predictor.with_noise_options() is predictor  # defaults: as trained (25 %)
    # a 10 % dose input: 90 % of its noise variance is above the normal dose's
    tenth = predictor.with_noise_options(dose_fraction=0.1)
    assert tenth.noise_level(image) == pytest.approx(level * 0.9**0.5)
    assert predictor.noise_level(image) == pytest.approx(level * 0.75**0.5)  # unchanged
    stronger = predictor.with_noise_options(strength=2.0)
    assert stronger.noise_level(image) == pytest.approx(2 * level * 0.75**0.5)
    # the level reaches the model: a lower dose, a higher second channel
    seen: list[float] = []
    run = tenth.run

    def recording(batch: np.ndarray) -> np.ndarray:
        seen.append(float(batch[0, 1, 0, 0]))
        return run(batch)

    tenth.run = recording
    tenth.enhance_array(image, tile_size=None)
    assert seen == [pytest.approx(level * 0.9**0.5 / 50.0, rel=1e-5)]
    with pytest.raises(ValueError, match="--dose"):
        predictor.with_noise_options(dose_fraction=0.0)
    with pytest.raises(ValueError, match="--strength"):
        predictor.with_noise_options(strength=-1.0)
    # a model told the input's own noise takes a strength but no dose
    own = {**CT_WINDOW, "noise_level_unit": 50.0}
    path = make_checkpoint(task="ldct", scale=1, normalization=own, in_channels=2, **TINY)
    with pytest.raises(ValueError, match="--dose does not apply"):
        Predictor.load(str(path)).with_noise_options(dose_fraction=0.1)
    # a model without a noise-level input takes neither
    blind = Predictor.load(str(make_checkpoint(task="ldct", scale=1, **TINY)))
    with pytest.raises(ValueError, match="non-blind"):
        blind.with_noise_options(strength=2.0)


def test_low_frequency_consistency_removes_a_drift_and_keeps_detail() -> None:
    import numpy as np

    from medsr.inference.predictor import low_frequency_consistency

    rng = np.random.default_rng(0)
    truth = rng.random((64, 64)).astype(np.float32)
    low = truth.reshape(16, 4, 16, 4).mean(axis=(1, 3))
    drifted = truth + np.linspace(0.0, 0.3, 64, dtype=np.float32)[None, :]
    fixed = low_frequency_consistency(low, drifted, 4, 4.0)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(fixed - truth)[inner].mean() < 0.2 * np.abs(drifted - truth)[inner].mean()
    # Already consistent: nothing changes.
    np.testing.assert_allclose(low_frequency_consistency(low, truth, 4, 4.0), truth, atol=1e-5)


def test_on_tile_counts_tiles_over_the_volume_and_aborts(
    make_checkpoint: Callable[..., Path],
) -> None:
    predictor = Predictor.load(str(make_checkpoint(scale=2, task="x2")))
    volume = Volume(
        np.random.default_rng(3).normal(0, 100, (3, 40, 40)), spacing=(2.0, 1.0, 1.0), unit="HU"
    )
    seen: list[tuple[int, int]] = []
    out = predictor.enhance(volume, tile_size=24, overlap=8, on_tile=lambda *a: seen.append(a))
    assert out.shape == (3, 80, 80)
    total = 3 * 4  # 2 x 2 tiles per slice
    assert seen[-1] == (total, total) and {t for _, t in seen} == {total}
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    progress_alone = predictor.enhance(volume, progress=True, tile_size=24, overlap=8)
    np.testing.assert_array_equal(progress_alone.array, out.array)

    def cancel(done: int, total: int) -> None:
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        predictor.enhance(volume, tile_size=24, overlap=8, on_tile=cancel)
    seen.clear()
    predictor.enhance_array(volume.array[0], tile_size=None, on_tile=lambda *a: seen.append(a))
    assert seen == [(1, 1)]


def test_shipped_consistency_fixes_errors_a_few_low_pixels_wide() -> None:
    import numpy as np

    from medsr.inference.predictor import LOW_FREQUENCY_CONSISTENCY, low_frequency_consistency

    rng = np.random.default_rng(0)
    truth = rng.random((128, 128)).astype(np.float32)
    inner = (slice(16, -16), slice(16, -16))
    for task, scale in (("xray-blind-x2", 2), ("xray-blind-x4", 4), ("ldct-x2", 2), ("ldct-x4", 4)):
        low = truth.reshape(128 // scale, scale, 128 // scale, scale).mean(axis=(1, 3))
        # an error 8 low pixels in period: what a model trained on sharper images adds to a
        # smooth radiograph; a 4-low-pixel Gaussian leaves most of it
        period = 8 * scale
        ripple = 0.05 * np.sin(2 * np.pi * np.arange(128) / period).astype(np.float32)[None, :]
        before = np.abs(ripple[0]).mean()
        sigma = LOW_FREQUENCY_CONSISTENCY[task]
        fixed = low_frequency_consistency(low, truth + ripple, scale, sigma)
        assert np.abs(fixed - truth)[inner].mean() < 0.3 * before, task
        wide = low_frequency_consistency(low, truth + ripple, scale, 4.0)
        assert np.abs(wide - truth)[inner].mean() > 0.5 * before, task
