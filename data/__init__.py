"""Dataset registry and the data loader.

`--dataset_mode NAME` resolves to the class registered with ``@DATASETS.register(NAME)``. Every mode is
imported here so that registration never depends on import order elsewhere.
"""
import os

import torch
from torch.utils.data import DataLoader, Sampler

from util.registry import Registry

DATASETS = Registry("dataset mode", "--dataset_mode")

from . import (ade20k_dataset, celebamaskhq_dataset, cityscapes_dataset, coco_dataset,  # noqa: E402,F401
               custom_dataset, landscapes, synthetic_dataset, synthetic_unaligned_dataset, unaligned_dataset)
from .base_dataset import DatasetError  # noqa: E402,F401


def create_dataset(opt):
    dataset = DATASETS.get(opt.dataset_mode)(opt)
    print(f"dataset [{type(dataset).__name__}] of size {len(dataset)} was created")
    return dataset


class EpochSampler(Sampler):
    """The sample order of one epoch: a permutation fixed by (--seed, epoch), or 0..N-1 with
    --serial_batches. It can start part-way, so a resumed run sees exactly the samples it had not seen, with
    the same augmentation (it yields (index, epoch), see Pix2pixDataset.__getitem__).

    Under DDP (world_size > 1) every rank cuts the same order into global batches of `global_batch` and takes
    its contiguous share of each (global_batch / world_size samples), so the ranks together see exactly the
    batches one process would, and `start` (images of the epoch already seen) means the same on every rank."""

    def __init__(self, num_samples: int, shuffle: bool, seed: int = 0, rank: int = 0, world_size: int = 1,
                 global_batch: int = 1):
        self.num_samples, self.shuffle, self.seed = num_samples, shuffle, seed
        self.rank, self.world_size, self.global_batch = rank, world_size, global_batch
        self.epoch, self.start = 1, 0

    def set_epoch(self, epoch: int, start: int = 0):
        self.epoch, self.start = epoch, start

    def order(self):
        if not self.shuffle:
            return list(range(self.num_samples))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(self.num_samples, generator=g).tolist()

    def indices(self):
        remaining = self.order()[self.start:]
        if self.world_size == 1:
            return remaining
        share = self.global_batch // self.world_size
        full = len(remaining) // self.global_batch * self.global_batch
        return [remaining[b + self.rank * share + i] for b in range(0, full, self.global_batch) for i in range(share)]

    def __iter__(self):
        """Yields (index, epoch): the dataset seeds the sample's augmentation with both."""
        return iter([(index, self.epoch) for index in self.indices()])

    def __len__(self):
        return len(self.indices())


def create_dataloader(opt, dataset=None, rank: int = 0, world_size: int = 1):
    """The loader over `dataset` (built from options when not given). Training drops the last partial batch;
    its sampler is `loader.sampler` (an EpochSampler). --batchSize is the global batch: under DDP each of the
    `world_size` ranks loads batchSize / world_size samples of it."""
    dataset = dataset if dataset is not None else create_dataset(opt)
    if opt.isTrain and len(dataset) < opt.batchSize:
        raise DatasetError(f"the {opt.dataset_mode} dataset has {len(dataset)} samples, fewer than --batchSize "
                           f"{opt.batchSize}: lower --batchSize or add data")
    sampler = EpochSampler(len(dataset), shuffle=not opt.serial_batches, seed=opt.seed, rank=rank,
                           world_size=world_size, global_batch=opt.batchSize)
    return DataLoader(dataset, batch_size=opt.batchSize // world_size, sampler=sampler,
                      num_workers=int(opt.nThreads), drop_last=opt.isTrain, persistent_workers=False,
                      pin_memory=bool(opt.gpu_ids), worker_init_fn=leave_the_job_process_group)


def next_batch(batches):
    """(the next batch of the iterator `batches`, None), (None, None) at the end of the epoch, or (None, one line)
    when loading failed: a DatasetError's message (it names the file), else the exception's type and message. An
    exception that a DataLoader worker re-raised ('Caught OSError in DataLoader worker process 0. Original
    Traceback ...') is told by the original's last line. Exceptions other than DatasetError also print their
    traceback on stderr, where a bug can be found."""
    try:
        return next(batches), None
    except StopIteration:
        return None, None
    except DatasetError as e:
        return None, str(e)
    except Exception as e:  # a full disk, a bug: the run stops all the same, after the last complete step
        import traceback
        traceback.print_exc()
        text = str(e).strip()
        if text.startswith("Caught ") and "Original Traceback" in text:
            name, _, message = text.splitlines()[-1].partition(": ")
            return None, f"{name.rsplit('.', 1)[-1]}: {message}"
        return None, f"{type(e).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def leave_the_job_process_group(worker_id):
    """In each loading worker: a process group of its own. `timeout`, a shell's Ctrl-C and `kill -- -PGID` signal the
    whole process group, and a worker killed by them would take the run down (the loader raises in the main
    process, mid-step) before the main process saves its checkpoint; the main process ends its workers itself
    when it stops. (Signals sent to the worker's own pid, as the loader's shutdown sends them, still apply.)"""
    os.setpgrp()
