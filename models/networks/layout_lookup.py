"""The layout as the networks read it, and the convolutions of it computed as table lookups.

A label map reaches the networks as a one-hot tensor of semantic_nc channels (models/pix2pix_model.py,
`semantic_layout`): the classes, then, unless --no_instance, one channel of instance edges. A convolution of a
one-hot map needs no multiplications. At output pixel p it is the bias plus, over the kernel offsets d, the kernel
column that the class at the input pixel s * p + d - pad picks:

    out(p) = b + sum_d W[:, label(s * p + d - pad), d]

a gather of k*k rows of a table (`lookup_conv2d`), where the convolution does label_nc * k*k multiply-adds per
output value. For ADE20K's 151 channels that is most of the arithmetic of SPADE's generator.

`Layout` carries a batch of label maps as the networks read it: the class ids (or the one-hot tensor they came
from, checked on first use), the instance edges, dense channels before or after the classes (OASIS's noise, or
features and images a layer reads concatenated to the layout), its size after nearest resizes, and SC-GAN's
block-mean pyramid levels. `LayoutConv2d` is an nn.Conv2d (same parameters, same state-dict keys, spectral norm
as on any conv) that reads a Layout: the class channels by lookup, the other channels by its convolution with the
matching slice of its kernel. A layout whose class part is not one-hot (a soft or user-blended map) is convolved
as it is, so the result never depends on which path ran; `set_layout_path` chooses the path per network.
"""
import torch
from torch import nn
from torch.nn import functional as F

LAYOUT_PATHS = ("auto", "lookup", "conv")
# --layout_conv auto: the path measured faster on each device type (docs/benchmarks.md, "Layout convolutions").
# A device type missing here convolves.
AUTO_LOOKUP_DEVICES = ("cpu",)


# -------------------------------------------------------------------------------------------------- the lookup

def _to_channels_first(rows, b, hw):
    """rows: (B * HW, C) -> (B, C, HW) contiguous, by one 2-D transposed copy per image: torch's blocked
    transpose, several times faster on the CPU than a permuted 4-D copy (45 against 3 ms for 128 channels at
    128x128). Traced (torch.compile, torch.export) as the permuted copy: a loop over the images would fix the
    batch size in the graph."""
    c = rows.shape[1]
    if torch.compiler.is_compiling():
        return rows.view(b, hw, c).transpose(1, 2).contiguous()
    out = rows.new_empty(b, c, hw)
    for i, image in enumerate(rows.view(b, hw, c)):
        out[i].copy_(image.t())
    return out


def _to_rows(x):
    """x: (B, C, H, W) -> (B * H * W, C) contiguous (the inverse of _to_channels_first)."""
    b, c = x.shape[:2]
    if x.is_contiguous(memory_format=torch.channels_last) or torch.compiler.is_compiling():
        return x.permute(0, 2, 3, 1).reshape(-1, c)
    rows = x.new_empty(b, x.shape[2] * x.shape[3], c)
    for i, image in enumerate(x.reshape(b, c, -1)):
        rows[i].copy_(image.t())
    return rows.view(-1, c)


class _OneHotConv(torch.autograd.Function):
    """out[b, :, p] = sum_j table[index[b, p, j]]: F.embedding_bag's gather-and-sum, returned channels first
    (or channels-last), with the table's gradient accumulated offset by offset (index_add_ of the output gradient
    once per column of `index`), 2.5-3x faster on the CPU than embedding_bag's own backward, which first expands
    the gradient to every (row, offset) pair."""

    @staticmethod
    def forward(ctx, table, index, channels_last):
        """table: (R, C); index: (B, Ho, Wo, J) long rows of table -> (B, C, Ho, Wo)."""
        b, ho, wo, j = index.shape
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        rows = F.embedding_bag(index.reshape(-1, j), table, mode="sum")
        if channels_last:
            return rows.view(b, ho, wo, -1).permute(0, 3, 1, 2)
        return _to_channels_first(rows, b, ho * wo).view(b, -1, ho, wo)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        rows = _to_rows(grad)
        grad_table = rows.new_zeros(ctx.rows, rows.shape[1])
        for column in index.reshape(-1, index.shape[-1]).t():
            grad_table.index_add_(0, column, rows)
        return grad_table, None, None


def lookup_index(ids, kernel_size, stride, padding, pad_mode, sentinel, pool=1):
    """The rows of a lookup table that a convolution reads: ids (B, fH, fW) long class ids in [0, sentinel) ->
    (B, Ho, Wo, f*f*kh*kw) long: for each output pixel, each phase of the f x f block (pool f) and each kernel
    offset d = (u, v), the row d * (sentinel + 1) + class. A pixel read from the zero padding gets the row
    d * (sentinel + 1) + sentinel (a row of zeros); reflection padding reflects the ids."""
    kh, kw = kernel_size
    (sh, sw), (ph, pw) = stride, padding
    offsets = torch.arange(kh * kw, device=ids.device).view(kh, kw) * (sentinel + 1)
    phases = [ids[:, a::pool, b::pool] for a in range(pool) for b in range(pool)] if pool > 1 else [ids]
    columns = []
    for phase in phases:
        if pad_mode == "zeros":
            padded = F.pad(phase, (pw, pw, ph, ph), value=sentinel)
        else:  # reflect/replicate/circular: pad the ids as the feature map would be padded
            padded = F.pad(phase[:, None].to(torch.float64), (pw, pw, ph, ph), mode=pad_mode)[:, 0].long()
        windows = padded.unfold(1, kh, sh).unfold(2, kw, sw)    # (B, Ho, Wo, kh, kw), a view
        columns.append((windows + offsets).flatten(3))
    return columns[0] if len(columns) == 1 else torch.cat(columns, dim=-1)


def lookup_table(weight):
    """weight: (C_out, K, kh, kw), the kernel's class channels -> ((kh*kw) * (K + 1), C_out): for each offset
    d, the K class columns W[:, c, d] and a row of zeros (padding)."""
    c_out, k, kh, kw = weight.shape
    table = weight.permute(2, 3, 1, 0)
    table = torch.cat([table, table.new_zeros(kh, kw, 1, c_out)], dim=2)
    return table.reshape(kh * kw * (k + 1), c_out)


def lookup_conv2d(ids, weight, stride=1, padding=0, pad_mode="zeros", pool=1, index=None, channels_last=False):
    """The convolution of the one-hot map of `ids` by `weight`, as a gather: ids (B, fH, fW) long in [0, K);
    weight (C_out, K, kh, kw) -> (B, C_out, Ho, Wo), without bias. With pool f > 1 the input is the f x f block
    mean of the one-hot map (B, K, H, W) (SC-GAN's pyramid levels): the mean over the f*f phases of the lookup.
    `index`: lookup_index's result for these arguments, when the caller keeps it for several convolutions;
    channels_last: the result in that memory format (the --channels_last networks), else contiguous.
    Gradients reach `weight` (the ids are data). Under autocast the table takes autocast's dtype, as the
    convolution's kernel would."""
    stride, padding = nn.modules.utils._pair(stride), nn.modules.utils._pair(padding)
    c_out, k, kh, kw = weight.shape
    if index is None:
        index = lookup_index(ids, (kh, kw), stride, padding, pad_mode, k, pool)
    table = lookup_table(weight)
    device = table.device.type
    if torch.is_autocast_enabled(device):
        table = table.to(torch.get_autocast_dtype(device))
    out = _OneHotConv.apply(table, index, channels_last)
    if pool > 1:
        out = out * (1.0 / (pool * pool))  # a power of two: exact
    return out


# -------------------------------------------------------------------------------------------------- the layout

def one_hot(ids, num_classes, dtype):
    """ids: (B, H, W) long -> (B, num_classes, H, W) of dtype."""
    out = torch.zeros(ids.shape[0], num_classes, *ids.shape[1:], dtype=dtype, device=ids.device)
    return out.scatter_(1, ids[:, None], 1.0)


def one_hot_ids(x):
    """x: (B, C, H, W) -> (ids (B, H, W) long, edges (B, 1, H, W) or None) when x is one-hot over all its
    channels, or over all but the last with a last channel of 0s and 1s (the instance edges); None otherwise (a
    soft, blended or NaN-holding map). Three reductions over the channels: a few ms for 151 channels at 256x256."""
    if x.dim() != 4 or x.shape[1] < 1 or x.numel() == 0 or not x.is_floating_point():
        return None
    if x.shape[1] > 1:
        last = x[:, -1:]
        if bool(((last == 0) | (last == 1)).all()):
            ids = _one_hot_over_channels(x[:, :-1])
            if ids is not None:
                return ids, last
    ids = _one_hot_over_channels(x)
    return None if ids is None else (ids, None)


def _one_hot_over_channels(x):
    # the largest value 1, the sum 1 and nothing negative: exactly one 1, the rest 0 (a NaN fails the sum)
    values, ids = x.max(dim=1)
    if bool((values == 1).all()) and bool((x.sum(dim=1) == 1).all()) and bool((x.amin(dim=1) >= 0).all()):
        return ids
    return None


def resize_nearest(x, size):
    """x: (B, C, H, W) -> (B, C, h, w): F.interpolate(x, size, mode="nearest"), as a strided view when h divides H
    and w divides W (nearest then reads source pixel i * H // h, every (H // h)-th). Torch's CPU kernel first
    copies a layout of many channels to channels-last: about 40 ms per call for 152 channels at 256x256 on two
    cores, several times per generator forward, for pixels a stride reads directly."""
    (height, width), (h, w) = x.shape[2:], tuple(size)
    if height % h == 0 and width % w == 0:
        return x[:, :, ::height // h, ::width // w]
    return F.interpolate(x, size=(h, w), mode="nearest")


class Layout:
    """A batch of layouts as a network reads them: channels [before | K classes | edges | after].

    Either with class ids (`from_ids`, the trainer's and the Synthesizer's way, or `from_tensor` on a one-hot
    tensor): the K class channels are the one-hot map of `ids`, or with `pool` f > 1 its f x f block mean, and no
    (B, K, H, W) tensor is made until a layer reads the layout densely (`tensor()`); or dense (`from_tensor` on
    any other map): `tensor()` is the map, and every layer convolves it.

    ids: (B, f*H, f*W) long in [0, K); edges: (B, 1, H, W) 0/1 or None; before, after: tuples of (B, c, H, W)
    tensors (OASIS's noise before the classes; features or an image a layer reads after them); pad: reflection
    padding (amount, mode) still to apply to the ids (pix2pixHD pads its input by reflection)."""

    def __init__(self, ids, num_classes, edges=None, before=(), after=(), pool=1, pad=None, dtype=None,
                 dense=None):
        self.ids, self.num_classes, self.edges, self.pool, self.pad = ids, num_classes, edges, pool, pad
        self.before, self.after = tuple(before), tuple(after)
        self.dtype = dtype if dtype is not None else (dense.dtype if dense is not None else torch.get_default_dtype())
        self._dense = dense
        self._cache = {}   # resized layouts and lookup indices, shared by the layers that read them

    @classmethod
    def from_ids(cls, ids, num_classes, edges=None, dtype=None):
        """ids: (B, H, W) or (B, 1, H, W) long in [0, num_classes); edges: (B, 1, H, W) of 0s and 1s, or None."""
        ids = ids[:, 0] if ids.dim() == 4 else ids
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        return cls(ids, num_classes, None if edges is None else edges.to(dtype), dtype=dtype)

    @classmethod
    def from_tensor(cls, x, find_ids=True):
        """x: (B, C, H, W). With find_ids and x one-hot (with or without a last channel of instance edges): a
        Layout of its ids, which reads it without the tensor; otherwise the dense map."""
        found = one_hot_ids(x) if find_ids else None
        if found is None:
            return cls(None, 0, dense=x)
        ids, edges = found
        return cls(ids, x.shape[1] - int(edges is not None), edges, dtype=x.dtype, dense=x)

    @property
    def dense_only(self):
        return self.ids is None

    # ------------------------------------------------------------------------------------------- shape
    @property
    def shape(self):
        if self._dense is not None:
            return self._dense.shape
        b, fh, fw = self.ids.shape
        h, w = fh // self.pool, fw // self.pool
        if self.pad is not None:
            h, w = h + 2 * self.pad[0], w + 2 * self.pad[0]
        channels = self.num_classes + sum(t.shape[1] for t in (*self.before, *self.after))
        return torch.Size((b, channels + int(self.edges is not None), h, w))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def device(self):
        return self._dense.device if self._dense is not None else self.ids.device

    def to(self, device=None, dtype=None):
        """The layout on `device`, its dense channels (and the one-hot map it makes) in floating `dtype`."""
        move = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
        if self.dense_only:
            return Layout(None, 0, dense=move(self._dense))
        return Layout(None if self.ids is None else self.ids.to(device), self.num_classes, move(self.edges),
                      [move(t) for t in self.before], [move(t) for t in self.after], self.pool, self.pad,
                      dtype if dtype is not None else self.dtype, move(self._dense))

    def tensor(self):
        """The (B, C, H, W) tensor of this layout, as an ordinary layer reads it (made once)."""
        if self._dense is None:
            classes = one_hot(self.ids, self.num_classes, self.dtype)
            if self.pool > 1:
                classes = F.avg_pool2d(classes, self.pool)
            if self.pad is not None:
                classes = F.pad(classes, [self.pad[0]] * 4, mode=self.pad[1])
            edges = () if self.edges is None else (self.edges,)
            self._dense = torch.cat([*self.before, classes, *edges, *self.after], dim=1)
        return self._dense

    def __getitem__(self, index):
        """Indexing reads the tensor (so code that looked at the one-hot input keeps working)."""
        return self.tensor()[index]

    # ------------------------------------------------------------------------------------------- new layouts
    def _with(self, dense_fn, **changes):
        """The Layout with `changes` to its ids-side fields, or (dense) dense_fn of its tensor."""
        if self.dense_only:
            return Layout(None, 0, dense=dense_fn(self.tensor()))
        fields = dict(ids=self.ids, num_classes=self.num_classes, edges=self.edges, before=self.before,
                      after=self.after, pool=self.pool, pad=self.pad, dtype=self.dtype)
        fields.update(changes)
        return Layout(**fields)

    def resized(self, size):
        """Nearest resize to size (h, w) (F.interpolate's 'nearest'): the ids are resized, not a one-hot tensor."""
        size = tuple(size)
        if tuple(self.shape[2:]) == size:
            return self
        if ("resized", size) not in self._cache:
            self._cache["resized", size] = self._resized(size)
        return self._cache["resized", size]

    def _resized(self, size):
        if self.dense_only or self.pool > 1 or self.pad is not None:
            return Layout(None, 0, dense=resize_nearest(self.tensor(), size))
        ids = resize_nearest(self.ids[:, None], size)[:, 0] if self._divides(size) else \
            F.interpolate(self.ids[:, None].to(torch.float64), size=size, mode="nearest")[:, 0].long()
        return self._with(None, ids=ids, edges=None if self.edges is None else resize_nearest(self.edges, size),
                          before=[resize_nearest(t, size) for t in self.before],
                          after=[resize_nearest(t, size) for t in self.after])

    def _divides(self, size):
        h, w = self.ids.shape[1:]
        return h % size[0] == 0 and w % size[1] == 0

    def block_mean(self):
        """The bilinear x0.5 resize (align_corners False: the exact 2x2 block mean of each channel), SC-GAN's
        pyramid step: the classes become a pool level of the same ids; edges and dense channels are resized."""
        half = lambda t: F.interpolate(t, scale_factor=0.5, mode="bilinear", align_corners=False)  # noqa: E731
        if self.dense_only or self.pad is not None:
            return Layout(None, 0, dense=half(self.tensor()))
        return self._with(None, pool=self.pool * 2, edges=None if self.edges is None else half(self.edges),
                          before=[half(t) for t in self.before], after=[half(t) for t in self.after])

    def padded(self, amount, mode):
        """F.pad(tensor(), [amount] * 4, mode=mode) for a reflection or replication mode."""
        if self.dense_only or self.pool > 1 or self.pad is not None:
            return Layout(None, 0, dense=F.pad(self.tensor(), [amount] * 4, mode=mode))
        pad = lambda t: F.pad(t, [amount] * 4, mode=mode)  # noqa: E731
        return self._with(None, pad=(amount, mode), edges=None if self.edges is None else pad(self.edges),
                          before=[pad(t) for t in self.before], after=[pad(t) for t in self.after])

    def with_before(self, x):
        """The layout with x: (B, c, H, W) as its first channels (torch.cat([x, tensor()], 1))."""
        return self._with(lambda t: torch.cat([x, t], dim=1), before=(x, *self.before))

    def with_after(self, x):
        """The layout with x: (B, c, H, W) as its last channels (torch.cat([tensor(), x], 1))."""
        return self._with(lambda t: torch.cat([t, x], dim=1), after=(*self.after, x))

    def map_dense(self, fn):
        """fn applied to the channels besides the classes (an activation that leaves 0s, 1s and block means of
        them as they are, such as LeakyReLU); a dense layout: fn of its tensor."""
        if self.dense_only:
            return Layout(None, 0, dense=fn(self.tensor()))
        return self._with(None, edges=None if self.edges is None else fn(self.edges),
                          before=[fn(t) for t in self.before], after=[fn(t) for t in self.after])

    @staticmethod
    def cat(layouts):
        """Layouts of the same structure concatenated over the batch (torch.cat(..., 0))."""
        first = layouts[0]
        if any(lay.dense_only for lay in layouts) or len({(lay.num_classes, lay.pool, lay.pad, lay.edges is None,
                                                           len(lay.before), len(lay.after)) for lay in layouts}) > 1:
            return Layout(None, 0, dense=torch.cat([lay.tensor() for lay in layouts]))
        return first._with(None, ids=torch.cat([lay.ids for lay in layouts]),
                           edges=None if first.edges is None else torch.cat([lay.edges for lay in layouts]),
                           before=[torch.cat(ts) for ts in zip(*(lay.before for lay in layouts))],
                           after=[torch.cat(ts) for ts in zip(*(lay.after for lay in layouts))])

    def index_for(self, kernel_size, stride, padding, pad_mode):
        """lookup_index of this layout's ids for a convolution, made once per layout."""
        key = ("index", tuple(kernel_size), tuple(stride), tuple(padding), pad_mode)
        if key not in self._cache:
            self._cache[key] = lookup_index(self.ids, kernel_size, stride, padding, pad_mode, self.num_classes,
                                            self.pool)
        return self._cache[key]

    def dense_parts(self):
        """The channels besides the classes, in order, as (first channel, tensor) pairs."""
        parts, at = [], 0
        for t in self.before:
            parts.append((at, t))
            at += t.shape[1]
        at += self.num_classes
        for t in ((self.edges,) if self.edges is not None else ()) + self.after:
            parts.append((at, t))
            at += t.shape[1]
        return parts

    def class_start(self):
        return sum(t.shape[1] for t in self.before)


# -------------------------------------------------------------------------------------------------- the layers

# A pool level f (SC-GAN's pyramid) is read by lookup while f*f <= K / POOLED_LOOKUP_COST: its lookup gathers
# f*f*k*k rows per output value where the convolution does K*k*k multiply-adds (docs/benchmarks.md).
POOLED_LOOKUP_COST = 8


class LayoutConv2d(nn.Conv2d):
    """An nn.Conv2d whose input holds a layout: given a Layout with class ids it convolves the class channels by
    lookup (`lookup_conv2d`) and its other channels (edges, noise, features, an image) with the matching slices
    of its kernel; given a tensor, or a Layout without ids, it is nn.Conv2d. Same parameters and state dict as
    nn.Conv2d; spectral norm parametrizes `weight` as on any conv, and the lookup reads the normalized kernel.

    layout_path: 'auto' (the lookup on the device types of AUTO_LOOKUP_DEVICES, for pyramid levels only while
    cheaper by POOLED_LOOKUP_COST), 'lookup' (wherever the classes are one-hot or block means of one-hot maps) or
    'conv'."""

    layout_path = "auto"

    def reads_by_lookup(self, device):
        """Whether this layer reads a one-hot layout on `device` by lookup (its path, whatever the input)."""
        if self.layout_path == "auto":
            return torch.device(device).type in AUTO_LOOKUP_DEVICES
        return self.layout_path == "lookup"

    def forward(self, x):
        """x: a (B, C_in, H, W) tensor, or a Layout of C_in channels -> (B, C_out, H', W'), as nn.Conv2d."""
        if not isinstance(x, Layout):
            return super().forward(x)
        if not self._lookup_fits(x):
            return super().forward(x.tensor())
        weight = self.weight
        start, k = x.class_start(), x.num_classes
        padding, pad_mode = self.padding, self.padding_mode
        if x.pad is not None:
            padding, pad_mode = (x.pad[0], x.pad[0]), x.pad[1]
        index = x.index_for(self.kernel_size, self.stride, padding, pad_mode)
        out = lookup_conv2d(x.ids, weight[:, start:start + k], self.stride, padding, pad_mode, x.pool, index,
                            channels_last=_is_channels_last(weight))
        parts = x.dense_parts()
        if parts:
            dense = torch.cat([t for _, t in parts], dim=1) if len(parts) > 1 else parts[0][1]
            kernel = torch.cat([weight[:, at:at + t.shape[1]] for at, t in parts], dim=1) if len(parts) > 1 \
                else weight[:, parts[0][0]:parts[0][0] + parts[0][1].shape[1]]
            # dense parts of a padded Layout are padded already (and then this conv's own padding is 0)
            return out + self._conv_forward(dense, kernel, self.bias)
        if self.bias is not None:
            out = out + self.bias.to(out.dtype).view(1, -1, 1, 1)
        return out

    def _lookup_fits(self, x):
        if x.ids is None or not self.reads_by_lookup(x.device) or self.groups != 1 or self.dilation != (1, 1):
            return False
        if x.shape[1] != self.in_channels:
            return False   # nn.Conv2d names the mismatch
        if x.pad is not None and self.padding != (0, 0):
            return False
        return self.layout_path == "lookup" or x.pool == 1 or x.pool * x.pool * POOLED_LOOKUP_COST <= x.num_classes


def _is_channels_last(weight):
    return weight.dim() == 4 and not weight.is_contiguous() and weight.is_contiguous(memory_format=torch.channels_last)


class LayoutReflectionPad2d(nn.ReflectionPad2d):
    """nn.ReflectionPad2d that also pads a Layout (its ids, reflected as the one-hot map would be)."""

    def forward(self, x):
        if isinstance(x, Layout):
            left, right, top, bottom = self.padding
            if len({left, right, top, bottom}) == 1:
                return x.padded(left, "reflect")
            return Layout(None, 0, dense=F.pad(x.tensor(), self.padding, mode="reflect"))
        return super().forward(x)


def set_layout_path(net: nn.Module, path: str) -> nn.Module:
    """--layout_conv: every LayoutConv2d of `net` reads layouts by `path` ('auto', 'lookup' or 'conv')."""
    if path not in LAYOUT_PATHS:
        raise ValueError(f"--layout_conv {path}: expected one of {', '.join(LAYOUT_PATHS)}")
    for m in net.modules():
        if isinstance(m, LayoutConv2d):
            m.layout_path = path
    return net


def reads_by_lookup(net: nn.Module, device) -> bool:
    """Whether any layout layer of `net` reads one-hot layouts by lookup on `device` (so the class ids of a
    tensor input are worth finding)."""
    return any(m.reads_by_lookup(device) for m in net.modules() if isinstance(m, LayoutConv2d))


def as_layout(net: nn.Module, seg):
    """A network's layout input: a Layout as it is; a tensor as Layout.from_tensor, its ids found only when the
    network reads some layer by lookup on the tensor's device (so an ONNX export or a --layout_conv conv
    network never looks at the values), and never for a tensor that requires its gradient."""
    if isinstance(seg, Layout):
        return seg
    # a layout that asks for its gradient is read densely: the lookup gives none to the layout
    wants_grad = seg.requires_grad and torch.is_grad_enabled()
    return Layout.from_tensor(seg, find_ids=not wants_grad and reads_by_lookup(net, seg.device))
