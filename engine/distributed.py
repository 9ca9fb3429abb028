"""Single-process and torchrun (DistributedDataParallel) execution.

``DistContext.from_env(device)`` reads torchrun's variables (WORLD_SIZE, RANK,
LOCAL_RANK); without torchrun everything is a no-op, while ``torchrun --nproc_per_node=1``
does start a process group and DDP (a one-GPU check of the NCCL path). CUDA ranks use NCCL, one GPU
each (cuda:LOCAL_RANK), with SyncBatchNorm; CPU ranks use gloo, where BatchNorm
statistics stay per rank (SyncBatchNorm needs CUDA). Only rank 0 writes: it logs,
validates and saves while the other ranks wait for its decision (hence the long timeout);
an error on rank 0 there, or a non-finite loss on any rank, stops every rank at once.
"""
import datetime
import os
from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as torch_dist

TIMEOUT = datetime.timedelta(minutes=60)   # rank 0 validates a whole list while the others wait


class RankFailedError(RuntimeError):
    """Raised on the other ranks when rank 0 reports that its work failed."""


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    launched: bool = False              # started by torchrun: a process group, DDP (even for 1 process)

    @classmethod
    def from_env(cls, device: Optional[torch.device] = None) -> "DistContext":
        """Join torchrun's process group: NCCL when training on CUDA, gloo on CPU."""
        if "RANK" not in os.environ:        # a plain `python main.py`: no process group
            return cls()
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        context = cls(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")),
                      launched=True)
        if not torch_dist.is_initialized():
            on_cuda = (device.type if device is not None else
                       "cuda" if torch.cuda.is_available() else "cpu") == "cuda"
            if on_cuda:
                torch.cuda.set_device(context.local_rank)
            torch_dist.init_process_group(backend="nccl" if on_cuda else "gloo", timeout=TIMEOUT)
        return context

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: torch.device) -> torch.device:
        """Each rank uses its own GPU; CPU ranks share the CPU."""
        if self.launched and requested.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return requested

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """DDP (gradients averaged over ranks); BatchNorm -> SyncBatchNorm on CUDA.

        With equal local batches, averaging the ranks' cross-entropy gradients gives
        the global-batch gradient; the contrastive loss, computed identically on every
        rank from ``gather_with_grad`` features, sums its gradients back to each rank
        W times, which the average turns into the global-batch gradient as well.
        """
        if not self.launched:
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
        """All-gather along dim 0 that back-propagates: each rank receives the sum over ranks
        of the gradients of its own slice (what ``wrap``'s gradient average expects)."""
        return _GatherWithGrad.apply(tensor, self.rank, self.world_size)

    def follow_main(self, value: int, device: torch.device, failed: bool = False) -> int:
        """Rank 0's ``value`` on every rank (decisions such as early stopping); the other ranks
        wait here while rank 0 validates.

        Rank 0 passes ``failed=True`` when its own work raised: every other rank then raises
        at once instead of blocking in the next collective until the timeout.
        """
        if not self.launched:
            return value
        tensor = torch.tensor([value, int(failed)], dtype=torch.long, device=device)
        torch_dist.broadcast(tensor, src=0)
        if tensor[1].item() and not self.is_main:
            raise RankFailedError(f"rank {self.rank}: stopping because rank 0 failed (its error is in "
                               f"its output and train.log)")
        return int(tensor[0].item())

    def share_from_main(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.launched:
            return value
        box = [value]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_finite(self, value: torch.Tensor) -> bool:
        """Whether ``value`` is finite on every rank (one tiny all-reduce), so that a NaN seen
        by one rank stops all of them at the same step. A bool ``value`` is a flag already
        (True: finite)."""
        finite = value.all() if value.dtype == torch.bool else torch.isfinite(value.detach()).all()
        if not self.launched:
            return bool(finite)
        flag = finite.to(torch.int32).reshape(1)
        torch_dist.all_reduce(flag, op=torch_dist.ReduceOp.MIN)
        return bool(flag.item())

    def close(self) -> None:
        if self.launched and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


class _GatherWithGrad(torch.autograd.Function):
    """Forward: all_gather + cat. Backward: all_reduce (sum) of the gathered gradient, own slice.

    The features are small (n_images x n_views x 128), so summing the whole gradient is
    cheap and works on every backend (gloo has no reduce_scatter).
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        ctx.rank, ctx.world_size = rank, world_size
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        torch_dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        torch_dist.all_reduce(grad)
        return grad.chunk(ctx.world_size)[ctx.rank], None, None
