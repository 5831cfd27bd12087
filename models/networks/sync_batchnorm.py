"""Synchronized batch norm: what `syncbatch` in a norm string (`spectralspadesyncbatch3x3`) builds.

`SyncBatchNorm2d` is `nn.BatchNorm2d` (same arguments, same state-dict keys, so NVlabs SPADE checkpoints load)
whose batch statistics, in training mode under a torch.distributed process group of more than one process,
are those of the whole global batch:

- on CUDA the trainer calls `convert_sync_batchnorm(net)`, which swaps every SyncBatchNorm2d for
  `torch.nn.SyncBatchNorm` (NCCL kernels) keeping its parameters and buffers;
- elsewhere (CPU under gloo, where torch.nn.SyncBatchNorm refuses to run, or an unconverted module) the
  module synchronizes itself: one autograd-aware all-reduce of the per-channel (sum, sum of squares, count),
  then normalization with the global mean and biased variance, and running statistics updated as BatchNorm
  does (unbiased variance with the global count).

Outside a process group, with one process, or in eval mode it is exactly `nn.BatchNorm2d`. Plain `batch` in a
norm string stays `nn.BatchNorm2d` and is never converted.
"""
import torch
from torch import distributed as dist
from torch import nn
from torch.distributed.nn import functional as dist_nn


def distributed_world(group=None) -> int:
    """Number of processes in `group` (the default group if None), or 1 outside torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return 1
    return dist.get_world_size(group)


class SyncBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the global batch of all processes. Input (B_local, C, H, W) -> same shape.

    With affine=False it is the parameter-free norm of SPADE and SC-GAN's SCN."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError(f"SyncBatchNorm2d expects (B, C, H, W) input, got shape {tuple(x.shape)}")
        if not self.training or distributed_world(self.process_group) == 1:
            return super().forward(x)
        return self._synchronized_forward(x)

    def _synchronized_forward(self, x):
        """x: (B_local, C, H, W). Statistics in fp32 at least, whatever the input dtype (autocast)."""
        c = x.shape[1]
        xf = x.to(torch.promote_types(x.dtype, torch.float32))
        # Two autograd-aware all-reduces (their backward all-reduces the gradients of the sums, so every process's
        # input gets the gradient through the global statistics from the losses of all processes): the mean,
        # then the centered sum of squares. Centering first keeps fp32 exact where E[x^2] - E[x]^2 would cancel.
        local = torch.cat([xf.sum(dim=(0, 2, 3)), xf.new_full((1,), x.numel() // c)])
        total = dist_nn.all_reduce(local, op=dist.ReduceOp.SUM, group=self.process_group)
        count = total[c]
        mean = total[:c] / count
        centered = xf - mean.view(1, c, 1, 1)
        squares = dist_nn.all_reduce(centered.square().sum(dim=(0, 2, 3)), op=dist.ReduceOp.SUM,
                                     group=self.process_group)
        var = squares / count  # biased, as BatchNorm normalizes with
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), count.detach())
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight.to(xf.dtype)
        out = centered * scale.view(1, c, 1, 1)
        if self.affine:
            out = out + self.bias.to(xf.dtype).view(1, c, 1, 1)
        return out.to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean, var, count):
        """As nn.BatchNorm2d: exponential (momentum) or cumulative (momentum None) average, unbiased variance."""
        if count.item() < 2:
            raise ValueError(f"SyncBatchNorm2d needs more than one value per channel over all processes to "
                             f"train, got {int(count.item())}")
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (count / (count - 1))
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def convert_sync_batchnorm(module: nn.Module, process_group=None) -> nn.Module:
    """Swap every SyncBatchNorm2d under `module` (or `module` itself) for torch.nn.SyncBatchNorm, sharing its
    parameters and buffers, for training under DDP on CUDA. Other batch norms are left as they are.
    Returns the converted module (a new object only when `module` itself is a SyncBatchNorm2d)."""
    if isinstance(module, SyncBatchNorm2d):
        group = process_group if process_group is not None else module.process_group
        converted = nn.SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                     module.track_running_stats, group)
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        new = convert_sync_batchnorm(child, process_group)
        if new is not child:
            setattr(module, name, new)
    return module
