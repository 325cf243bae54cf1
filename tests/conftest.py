from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test on one torch thread: tiny convolutions only contend with OpenMP threads
    (35x slower on a loaded 2-core machine). Use with `pytest.mark.usefixtures`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
