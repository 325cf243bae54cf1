"""Load test of `medsr serve`: N concurrent clients on loopback, latency, errors, peak memory.

    python benchmarks/web_load.py [--clients 1 4 8] [--requests 4] [--size tiny|full]
                                  [--checkpoint PATH] [--workers 1] [--max-seconds 120]

Starts `medsr serve` in a subprocess on 127.0.0.1 (a free port; nothing else is contacted)
with a random-weight SRResNet checkpoint (`tiny`: 8 features, 1 block, i.e. mostly web,
decoding and packaging cost; `full`: the paper's 64 features, 16 blocks) or `--checkpoint`.
Each client thread posts `CT_small.dcm` (128 x 128 CT, x4 -> 512 x 512) to
`/api/enhance` `--requests` times and then fetches the output array, as the page does.
Reported per client count: p50 / p95 latency of one upload -> result round trip,
requests per second, errors (anything but 200: must be 0) and the server's peak resident
memory (VmHWM) since it started. Clients are capped at 32 and every run at `--max-seconds`.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parents[1]
MAX_CLIENTS = 32
SIZES = {
    "tiny": {"num_features": 8, "num_blocks": 1},
    "full": {"num_features": 64, "num_blocks": 16},
}


def make_checkpoint(folder: Path, size: str) -> Path:
    """A random-weight ldct-x4 SRResNet in the training checkpoint format."""
    sys.path.insert(0, str(ROOT / "tests" / "inference"))
    from conftest import CT_WINDOW, save_checkpoint  # type: ignore[import-not-found]

    options = {**SIZES[size], "batch_norm": False, "global_residual": True}
    return save_checkpoint(
        folder / f"{size}.pt", task="ldct-x4", scale=4, normalization=CT_WINDOW, **options
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(checkpoint: Path, port: int, workers: int, queue: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "medsr.cli",
        "serve",
        str(checkpoint),
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--queue",
        str(queue),
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("medsr serve did not start within 60 s")


def client(
    base: str, data: bytes, count: int, stop_at: float, latencies: list[float], errors: list[str]
) -> None:
    with httpx.Client(base_url=base, timeout=300) as http:
        for _ in range(count):
            if time.monotonic() > stop_at:
                errors.append("time limit reached")
                return
            start = time.perf_counter()
            try:
                response = http.post("/api/enhance", files={"files": ("ct.dcm", data)})
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:80]}")
                    continue
                array = http.get(response.json()["data"]["output"])
                if array.headers.get("x-shape") != "512,512":
                    errors.append(f"output shape {array.headers.get('x-shape')}")
                    continue
            except httpx.HTTPError as error:
                errors.append(type(error).__name__)
                continue
            latencies.append(time.perf_counter() - start)


def run(clients: int, args: argparse.Namespace, checkpoint: Path, data: bytes) -> dict[str, float]:
    port = free_port()
    server = start_server(checkpoint, port, args.workers, queue=clients)
    latencies: list[float] = []
    errors: list[str] = []
    try:
        stop_at = time.monotonic() + args.max_seconds
        threads = [
            threading.Thread(
                target=client,
                args=(f"http://127.0.0.1:{port}", data, args.requests, stop_at, latencies, errors),
            )
            for _ in range(clients)
        ]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        peak = peak_memory_mb(server.pid)
    finally:
        server.terminate()
        server.wait(10)
    times = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "clients": clients,
        "requests": len(latencies) + len(errors),
        "p50": float(np.percentile(times, 50)),
        "p95": float(np.percentile(times, 95)),
        "rps": len(latencies) / wall,
        "errors": len(errors),
        "peak_mb": peak,
        "first_error": errors[0] if errors else "",
    }  # type: ignore[dict-item]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--requests", type=int, default=4, help="per client")
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="per client count")
    args = parser.parse_args()
    if any(not 1 <= n <= MAX_CLIENTS for n in args.clients):
        parser.error(f"--clients must be within 1..{MAX_CLIENTS}")
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or make_checkpoint(Path(folder), args.size)
        rows = [run(n, args, checkpoint, data) for n in args.clients]
    model = args.checkpoint.name if args.checkpoint else f"random SRResNet ({args.size})"
    print(
        f"medsr serve, {model}, ldct-x4, CT_small.dcm 128x128 -> 512x512, workers "
        f"{args.workers}, {len(os.sched_getaffinity(0))} cores visible, loopback\n"
    )
    print("| clients | requests | p50 (s) | p95 (s) | requests/s | errors | server peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['requests']} | {r['p50']:.3f} | {r['p95']:.3f} | "
            f"{r['rps']:.2f} | {r['errors']} | {r['peak_mb']:.0f} |"
        )
    if failed := [r for r in rows if r["errors"]]:
        print(f"\nerrors: {failed[0]['first_error']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
