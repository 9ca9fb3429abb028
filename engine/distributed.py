"""Single-process and torchrun (DistributedDataParallel) execution.

``DistContext.from_env()`` reads torchrun's variables (WORLD_SIZE, RANK,
LOCAL_RANK); with one process everything is a no-op. Only rank 0 writes.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DistContext":
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls()
        context = cls(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
        if not torch_dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch_dist.init_process_group(backend=backend)
        return context

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """Each rank uses its own GPU; CPU ranks share the CPU."""
        if self.world_size > 1 and requested.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return requested

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        if self.world_size == 1:
            return model
        if device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    @staticmethod
    def unwrap(model: torch.nn.Module) -> torch.nn.Module:
        return model.module if hasattr(model, "module") else model

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """Concatenate ``tensor`` from every rank along dim 0 (no gradient)."""
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        torch_dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def gather_with_grad(self, tensor: torch.Tensor) -> torch.Tensor:
        """All-gather that back-propagates (gradients are summed back to their rank)."""
        from torch.distributed.nn.functional import all_gather
        return torch.cat(all_gather(tensor.contiguous()))

    def barrier(self) -> None:
        if self.world_size > 1:
            torch_dist.barrier()

    def close(self) -> None:
        if self.world_size > 1 and torch_dist.is_initialized():
            torch_dist.destroy_process_group()
