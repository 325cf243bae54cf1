"""torchrun-native distributed training: RANK, LOCAL_RANK, WORLD_SIZE from the environment.

Started with `torchrun --nproc_per_node=N -m medsr.cli train ...`, every process trains on
its own deterministic share of each batch; gradients are averaged with one all-reduce per
model after each backward (`average_gradients`) rather than through the DDP wrapper, because
the GAN step runs the discriminator several times per update and freezes it during the
generator's update, which DDP's reducer does not allow without extra flags. Buffers (batch
norm statistics) are broadcast from rank 0 after each step, so all ranks keep identical
models. gloo on CPU, nccl on CUDA. Rank 0 alone logs, validates and writes checkpoints.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from medsr.torchrun import ProcessRank, env_int


class DistributedInfo(ProcessRank):
    """This process's place in the training job (rank 0 of 1 without torchrun)."""


def setup_distributed(device: torch.device) -> DistributedInfo:
    """Join the process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    info = DistributedInfo.from_environment()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def pick_device(name: str, info: DistributedInfo | None = None) -> torch.device:
    """`auto` -> `cuda:LOCAL_RANK` when CUDA is available, else CPU; or the named device."""
    local_rank = env_int("LOCAL_RANK", 0) if info is None else info.local_rank
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflatten_into(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def average_gradients(model: nn.Module) -> None:
    """Replace every gradient by its mean over ranks (one flat all-reduce; no-op alone)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = _flat(grads)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    _unflatten_into(flat / dist.get_world_size(), grads)


def broadcast_state(model: nn.Module, parameters: bool = False) -> None:
    """Copy rank 0's buffers (and parameters, if asked) to every rank."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    tensors = [b for b in model.buffers() if b.is_floating_point() or b.dtype == torch.long]
    if parameters:
        tensors += [p.data for p in model.parameters()]
    if not tensors:
        return
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    for group in groups.values():
        flat = _flat(group)
        dist.broadcast(flat, src=0)
        _unflatten_into(flat, group)
