"""What the papers' segmenters share: the module contract, [-1, 1] -> [0, 1], and strict loading of a released
weights file.

Contract (every segmenter in this package): a float RGB batch (B, 3, H, W) in [-1, 1], the generator's output
range, goes in; (B, H, W) long class ids in the *dataset's* label space come out (the ids the project's loader
for that dataset produces), at `output_size(H, W)`: the input's size, except where the protocol followed scores
at the network's own size (COCO-Stuff at 512, as imaginaire). Each network's own preprocessing happens inside.
"""
import abc
import pickle
import re
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SegmenterWeightsError(ValueError):
    """A weights file that is missing, unreadable or not the released layout of the network asked for."""


# CSAIL's synchronized batch norm (mit_semseg/lib/nn/modules/batchnorm.py) registers these buffers on every batch
# norm, and its train.py saves the whole state dict (the filter that would drop them is commented out), so the
# released UPerNet files carry them; their loader reads with strict=False. Evaluation never reads them.
SYNC_BN_BUFFERS = ("_tmp_running_mean", "_tmp_running_var", "_running_iter")


def to_unit_range(images):
    """(B, 3, H, W) in [-1, 1] -> the same in [0, 1] (what torchvision's ToTensor gives for a uint8 image)."""
    return (images + 1) / 2


def to_uint8(images):
    """(B, 3, H, W) in [-1, 1] -> (B, 3, H, W) uint8, rounded to the nearest level as test.py writes its PNGs
    (util.tensor2im), for the networks whose official pipeline reads image files."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


class Segmenter(nn.Module, metaclass=abc.ABCMeta):
    """Base of the segmenters: `class_scores` gives per-class scores at `output_size` (the input's unless a
    segmenter says otherwise), forward takes the arg max and maps the network's class k to the dataset id
    `dataset_ids[k]`."""

    def __init__(self, dataset_ids: Sequence[int]):
        super().__init__()
        # Not persistent: the state dict stays exactly the released file's layout.
        self.register_buffer("dataset_ids", torch.as_tensor(list(dataset_ids), dtype=torch.long),
                             persistent=False)

    @property
    def num_classes(self) -> int:
        return len(self.dataset_ids)

    @abc.abstractmethod
    def class_scores(self, images):
        """images: (B, 3, H, W) in [-1, 1] -> (B, num_classes, *output_size(H, W)) scores (higher wins)."""

    def output_size(self, height: int, width: int):
        """The size (h, w) at which an image of height x width is segmented and scored: the input's."""
        return height, width

    @torch.no_grad()
    def forward(self, images):
        """images: (B, 3, H, W) RGB in [-1, 1] -> (B, *output_size(H, W)) long dataset label ids."""
        return self.dataset_ids[self.class_scores(images).argmax(1)]

    def label_map(self) -> dict:
        """{dataset id: network class}: the dataset ids this network can predict; others are not scored."""
        return {int(d): k for k, d in enumerate(self.dataset_ids.tolist())}

    @abc.abstractmethod
    def released_modules(self) -> Sequence[nn.Module]:
        """The submodules whose state dicts are the released files, in the order the files are given."""


def read_weights(path: str, what: str) -> dict:
    """A released weights file as {name: tensor}, read without executing pickled code. A file saved from
    nn.DataParallel (every key under 'module.') is read without that prefix."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SegmenterWeightsError(f"{path}: no such file ({what})") from None
    except pickle.UnpicklingError as e:   # a pickled object beyond tensors and containers: loading it runs code
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        pickles = f" (it pickles {found.group(1)})" if found else ""
        raise SegmenterWeightsError(f"{path}: not a plain weights file{pickles}, and this project does not unpickle "
                                    f"files (unpickling can run code); the released {what} is a plain state "
                                    f"dict") from None
    except Exception as e:  # noqa: BLE001 -- any unreadable file gets the same message
        first_line = (str(e).strip().splitlines() or [""])[0]
        raise SegmenterWeightsError(f"{path}: not a weights file torch can read ({what}): {type(e).__name__}: "
                                    f"{first_line[:200]}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SegmenterWeightsError(f"{path}: not a state dict (names -> tensors) but a {type(state).__name__} "
                                    f"({what})")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_strict(module: nn.Module, state: dict, path: str, what: str):
    """Load `state` into `module` with strict=True, after checking names and shapes so that a wrong file is named
    with its first wrong key. Batch-norm step counters (`num_batches_tracked`) that files saved before PyTorch
    0.4.1 lack are taken as 0: evaluation never reads them."""
    own = module.state_dict()
    state = dict(state)
    for key, value in own.items():
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        first = (f"missing {missing[0]} and {len(missing) - 1} more" if missing else
                 f"unexpected {unexpected[0]} and {len(unexpected) - 1} more")
        raise SegmenterWeightsError(f"{path}: not the layout of {what} ({first})")
    for key, value in own.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise SegmenterWeightsError(f"{path}: {key} has shape {tuple(state[key].shape)}, {what} has "
                                        f"{tuple(value.shape)}")
    module.load_state_dict(state, strict=True)
    return module


def drop_sync_bn_buffers(module: nn.Module, state: dict, path: str):
    """-> (`state` without CSAIL's synchronized batch-norm buffers, how many were dropped). A key is dropped only
    when its last part is one of SYNC_BN_BUFFERS, the rest names a batch norm of `module` and its shape is that
    batch norm's ((C,), (C,), (1,)); any other key stays, for load_strict to refuse."""
    batch_norms = {name: m for name, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    kept, dropped = {}, 0
    for key, value in state.items():
        prefix, _, last = key.rpartition(".")
        if last not in SYNC_BN_BUFFERS or prefix not in batch_norms:
            kept[key] = value
            continue
        shape = (1,) if last == "_running_iter" else (batch_norms[prefix].num_features,)
        if tuple(value.shape) != shape:
            raise SegmenterWeightsError(f"{path}: {key} has shape {tuple(value.shape)}, CSAIL's synchronized batch "
                                        f"norm has {shape}")
        dropped += 1
    return kept, dropped


def load_released(segmenter: Segmenter, weights: Sequence[str], names: Sequence[str], sync_bn_buffers=False,
                  log: Callable[[str], None] = print) -> Segmenter:
    """Strictly load one file per released module (`names`: what each file is, for messages); -> eval mode.
    sync_bn_buffers: the files are CSAIL's, whose batch norms carry SYNC_BN_BUFFERS: those are dropped (their
    count `log`ged in one line) and every other key is loaded strictly."""
    modules = segmenter.released_modules()
    if len(weights) != len(modules):
        raise SegmenterWeightsError(f"{type(segmenter).__name__} takes {len(modules)} weights file(s) "
                                    f"({', '.join(names)}), got {len(weights)}")
    dropped = []   # (count, file)
    for module, path, what in zip(modules, weights, names):
        state = read_weights(path, what)
        if sync_bn_buffers:
            state, count = drop_sync_bn_buffers(module, state, path)
            dropped += [(count, path)] if count else []
        load_strict(module, state, path, what)
    if dropped:
        log(f"ignored {sum(count for count, _ in dropped)} buffers of CSAIL's synchronized batch norm "
            f"({', '.join(SYNC_BN_BUFFERS)}): {', '.join(f'{count} in {path}' for count, path in dropped)}; "
            f"evaluation does not read them")
    return segmenter.eval()


class Bottleneck(nn.Module):
    """ResNet bottleneck with stride and dilation on the 3x3 conv (torchvision's layout: keys conv1..3, bn1..3,
    downsample.0/1), shared by UPerNet's ResNet-101 encoder and DRN-D-105."""

    def __init__(self, in_ch, planes, stride=1, downsample=None, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        """x: (B, in_ch, H, W) -> (B, 4 * planes, H / stride, W / stride)."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))
