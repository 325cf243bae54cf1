"""`medsr enhance`'s option parsing: `--tile` as the Predictor takes it."""

from __future__ import annotations

import pytest

from medsr.apps.enhance import parse_tile


@pytest.mark.parametrize(
    ("text", "expected"), [("auto", "auto"), (" AUTO ", "auto"), ("0", None), ("256", 256)]
)
def test_parse_tile(text: str, expected: object) -> None:
    assert parse_tile(text, overlap=32) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("big", "--tile must be auto, 0 (whole image) or a tile side in pixels, got 'big'"),
        ("-64", "--tile must be auto, 0 (whole image) or a tile side in pixels, got '-64'"),
        ("2.5", "--tile must be auto, 0 (whole image) or a tile side in pixels, got '2.5'"),
        ("32", "--tile 32 must be larger than --overlap 32"),
    ],
)
def test_parse_tile_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_tile(text, overlap=32)
    assert str(error.value) == message
