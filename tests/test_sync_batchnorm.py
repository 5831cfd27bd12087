"""SyncBatchNorm2d (models/networks/sync_batchnorm.py): two CPU processes under gloo, each holding part of
the batch, give what one process gives with nn.BatchNorm2d over the whole batch; `syncbatch` in a norm string
builds it and `batch` does not; convert_sync_batchnorm swaps only it, keeping parameters and buffers."""
import socket

import pytest
import torch
from torch import distributed as dist
from torch import multiprocessing as mp
from torch import nn

from models.networks.normalization import SPADE, conv_with_norm, param_free_norm, parse_norm
from models.networks.semantic_composition import AffineNorm, SCNorm
from models.networks.sync_batchnorm import SyncBatchNorm2d, convert_sync_batchnorm

WORLD = 2
SPLIT = (3, 1)  # uneven on purpose: the global statistics must weight each process by its count
STEPS = 2
# float64 throughout, where the two ways agree up to rounding of values of order 1: measured at most 3.6e-15
# (a parameter gradient). 1e-12 leaves a factor of 300 for other summation orders and fails any float32 step.
ATOL = 1e-12


def full_batch(affine, momentum):
    """The whole batch, the output gradient and a batch norm with non-trivial parameters and running stats."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(STEPS, sum(SPLIT), 3, 4, 5, generator=gen, dtype=torch.double) * 2 + 0.5
    grad = torch.randn(x.shape, generator=gen, dtype=torch.double)
    bn = nn.BatchNorm2d(3, affine=affine, momentum=momentum).double()
    with torch.no_grad():
        if affine:
            bn.weight.copy_(torch.rand(3, generator=gen, dtype=torch.double) + 0.5)
            bn.bias.copy_(torch.randn(3, generator=gen, dtype=torch.double))
        bn.running_mean.copy_(torch.randn(3, generator=gen, dtype=torch.double))
        bn.running_var.copy_(torch.rand(3, generator=gen, dtype=torch.double) + 0.5)
    return x, grad, bn


def run_steps(bn, x, grad):
    """Train-mode steps; -> outputs, input grads, summed parameter grads (each step's) and the final state."""
    outs, x_grads, p_grads = [], [], []
    for step in range(STEPS):
        xs = x[step].clone().requires_grad_()
        out = bn(xs)
        bn.zero_grad()
        (out * grad[step]).sum().backward()
        outs.append(out.detach())
        x_grads.append(xs.grad)
        p_grads.append([p.grad.clone() for p in bn.parameters()])
    return outs, x_grads, p_grads, {k: v.clone() for k, v in bn.state_dict().items()}


def worker(rank, port, affine, momentum, path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        x, grad, reference = full_batch(affine, momentum)
        start = sum(SPLIT[:rank])
        part = slice(start, start + SPLIT[rank])
        bn = SyncBatchNorm2d(3, affine=affine, momentum=momentum).double()
        bn.load_state_dict(reference.state_dict())
        outs, x_grads, p_grads, state = run_steps(bn, x[:, part], grad[:, part])
        for grads in p_grads:  # what DDP does (up to its 1/world scaling): sum the parameter gradients
            for g in grads:
                dist.all_reduce(g)
        torch.save({"outs": outs, "x_grads": x_grads, "p_grads": p_grads, "state": state}, f"{path}.{rank}")
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("affine,momentum", [(True, 0.1), (False, None)])
def test_two_processes_equal_one_process_over_the_whole_batch(tmp_path, affine, momentum):
    path = str(tmp_path / "rank")
    mp.spawn(worker, args=(free_port(), affine, momentum, path), nprocs=WORLD, join=True)
    x, grad, reference = full_batch(affine, momentum)
    outs, x_grads, p_grads, state = run_steps(reference, x, grad)
    ranks = [torch.load(f"{path}.{r}") for r in range(WORLD)]
    for step in range(STEPS):
        assert torch.allclose(torch.cat([r["outs"][step] for r in ranks]), outs[step], rtol=0, atol=ATOL)
        assert torch.allclose(torch.cat([r["x_grads"][step] for r in ranks]), x_grads[step], rtol=0, atol=ATOL)
        for r in ranks:
            for mine, theirs in zip(r["p_grads"][step], p_grads[step]):
                assert torch.allclose(mine, theirs, rtol=0, atol=ATOL)
    for r in ranks:
        assert r["state"].keys() == state.keys()
        for k in state:
            assert r["state"][k].dtype == state[k].dtype, k
            assert torch.allclose(r["state"][k].double(), state[k].double(), rtol=0, atol=ATOL), k
        assert int(r["state"]["num_batches_tracked"]) == STEPS


def test_one_process_is_batch_norm():
    torch.manual_seed(0)
    sync, plain = SyncBatchNorm2d(4), nn.BatchNorm2d(4)
    assert list(sync.state_dict()) == list(plain.state_dict())  # SPADE checkpoints load
    x = torch.randn(3, 4, 5, 5)
    assert torch.equal(sync(x), plain(x))
    assert torch.equal(sync.running_var, plain.running_var)


def test_syncbatch_and_batch_are_different_choices():
    assert type(param_free_norm("syncbatch", 4)) is SyncBatchNorm2d and not param_free_norm("syncbatch", 4).affine
    assert type(param_free_norm("batch", 4)) is nn.BatchNorm2d
    assert type(conv_with_norm(nn.Conv2d(3, 4, 3), parse_norm("spectralsyncbatch"))[1]) is SyncBatchNorm2d
    assert type(conv_with_norm(nn.Conv2d(3, 4, 3), parse_norm("spectralbatch"))[1]) is nn.BatchNorm2d
    assert type(SCNorm(4, 3, "syncbatch").param_free_norm) is SyncBatchNorm2d
    assert type(SCNorm(4, 3, "batch").param_free_norm) is nn.BatchNorm2d
    assert type(SPADE(4, 3, "syncbatch").param_free_norm) is SyncBatchNorm2d
    assert type(AffineNorm(4, "syncbatch").norm) is SyncBatchNorm2d


def test_convert_swaps_only_sync_batch_norm_keeping_parameters_and_buffers():
    torch.manual_seed(0)
    net = nn.Sequential(SyncBatchNorm2d(4), nn.BatchNorm2d(4), nn.Sequential(SyncBatchNorm2d(2, affine=False)))
    net[0](torch.randn(3, 4, 2, 2))  # non-default running stats
    before = {k: v.clone() for k, v in net.state_dict().items()}
    weight = net[0].weight
    converted = convert_sync_batchnorm(net)
    assert converted is net
    assert type(net[0]) is nn.SyncBatchNorm and type(net[2][0]) is nn.SyncBatchNorm
    assert type(net[1]) is nn.BatchNorm2d
    assert net[0].weight is weight and not net[2][0].affine
    after = net.state_dict()
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
