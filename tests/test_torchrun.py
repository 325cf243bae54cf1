from __future__ import annotations

import pytest

from medsr.torchrun import ProcessRank, env_int


def test_process_rank_is_read_from_torchruns_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    alone = ProcessRank.from_environment()
    assert (alone.rank, alone.world_size, alone.local_rank) == (0, 1, 0)
    assert alone.is_main and not alone.enabled
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    place = ProcessRank.from_environment()
    assert (place.rank, place.world_size, place.local_rank) == (3, 4, 1)
    assert place.enabled and not place.is_main


def test_a_rank_outside_the_world_or_a_non_integer_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RANK", "4")
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ValueError, match=r"RANK 4 not in \[0, WORLD_SIZE 4\)"):
        ProcessRank.from_environment()
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(ValueError, match="WORLD_SIZE='four' is not an integer"):
        env_int("WORLD_SIZE", 1)
