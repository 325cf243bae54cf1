"""A seeded fuzz run (issue 13): a few hundred malformed files through `medsr.io.read`,
`POST /api/enhance` and `POST /api/fuse` give no unhandled error, no HTTP 500, no hang and
bounded memory. `benchmarks/fuzz.py --cases 5000` runs the same corpus longer."""

from __future__ import annotations

import pytest

from tests.benchmark_scripts import load_benchmark

pytest.importorskip("fastapi")
pytest.importorskip("multipart")

CASES = 300
RSS_GROWTH_MB = 1024  # over the process's size when the run starts


def _fuzz():  # type: ignore[no-untyped-def]
    return load_benchmark("fuzz")


@pytest.mark.usefixtures("one_thread")
def test_fuzzed_inputs_are_refused_cleanly() -> None:
    fuzz = _fuzz()
    tallies = fuzz.run(CASES, seed=0, timeout=30.0)
    report = fuzz.table(tallies)
    for target, tally in tallies.items():
        failures = {k: tally.outcomes[k] for k in ("unhandled", "http500", "hang")}
        assert not any(failures.values()), f"{target}: {failures} {tally.examples}\n{report}"
        assert tally.outcomes["refused"] > 0 and tally.outcomes["accepted"] > 0, report
        assert tally.rss_growth_mb < RSS_GROWTH_MB, report
    assert sum(sum(t.outcomes.values()) for t in tallies.values()) == CASES
