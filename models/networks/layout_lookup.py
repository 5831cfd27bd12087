"""The layout as the networks read it, and the convolutions of it computed as table lookups.

A label map reaches the networks as a one-hot tensor of semantic_nc channels (models/pix2pix_model.py,
`semantic_layout`): the classes, then, unless --no_instance, one channel of instance edges. A convolution of a
one-hot map needs no multiplications. At output pixel p it is the bias plus, over the kernel offsets d, the kernel
column that the class at the input pixel s * p + d - pad picks:

    out(p) = b + sum_d W[:, label(s * p + d - pad), d]

a gather of k*k rows of a table (`lookup_conv2d`), where the convolution does label_nc * k*k multiply-adds per
output value. For ADE20K's 151 channels that is most of the arithmetic of SPADE's generator.

`Layout` carries a batch of label maps as the networks read it: the class ids (or the one-hot tensor they came
from, when it is one), the instance edges, dense channels before or after the classes (OASIS's noise, or features
and images a layer reads concatenated to the layout), nearest resizes and reflection padding of the ids, and the
averages of the one-hot map that networks take (SC-GAN's 2x2 block-mean pyramid, the multiscale discriminator's
3x3 average) as weighted sums of the one-hot maps of shifted ids ("phases"), which a convolution reads as the
same weighted sum of lookups. `LayoutConv2d` is an nn.Conv2d (same parameters, same state-dict keys, spectral norm
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


def _rows_to_map(rows, b, h, w, channels_last):
    """rows: (B * H * W, C), one per output pixel -> (B, C, H, W), contiguous or in channels-last memory."""
    if channels_last:
        return rows.view(b, h, w, -1).permute(0, 3, 1, 2)
    return _to_channels_first(rows, b, h * w).view(b, -1, h, w)


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
    """out[b, :, p] = sum_j weights[b, p, j] * table[index[b, p, j]] (weights 1 when None): F.embedding_bag's
    gather-and-sum, returned channels first (or channels-last), with the table's gradient accumulated column by
    column of `index` (index_add_ of the output gradient), 2.5-3x faster on the CPU than embedding_bag's own
    backward, which first expands the gradient to every (row, column) pair."""

    @staticmethod
    def forward(ctx, table, index, weights, channels_last):
        """table: (R, C); index: (B, Ho, Wo, J) long rows of table; weights: (B, Ho, Wo, J) or None
        -> (B, C, Ho, Wo)."""
        b, ho, wo, j = index.shape
        ctx.save_for_backward(index, weights)
        ctx.rows = table.shape[0]
        rows = F.embedding_bag(index.reshape(-1, j), table, mode="sum",
                               per_sample_weights=None if weights is None else weights.reshape(-1, j))
        return _rows_to_map(rows, b, ho, wo, channels_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        index, weights = ctx.saved_tensors
        rows = _to_rows(grad)
        grad_table = rows.new_zeros(ctx.rows, rows.shape[1])
        j = index.shape[-1]
        weights = None if weights is None else weights.reshape(-1, j).to(rows.dtype)
        for i, column in enumerate(index.reshape(-1, j).t()):
            grad_table.index_add_(0, column, rows if weights is None else rows * weights[:, i, None])
        return grad_table, None, None, None


class _InteriorOneHotConv(torch.autograd.Function):
    """_OneHotConv for a 'same' convolution (stride 1) of one-hot ids, by regions: an output pixel whose k x k
    window holds one class c (most pixels of a label map) is the kernel's sum over the offsets, table row c of
    sum_d W[:, c, d] (one gather); only the pixels at a class border or the image's edge gather their k*k rows.
    Backward likewise: the gradient summed by class over the interior pixels once, then added to every offset's
    rows; the border pixels' gradient added row by row. About (1 + 2 * border share) passes over the output
    instead of k*k."""

    @staticmethod
    def forward(ctx, table, index, centers, border, channels_last):
        """table: (J * R, C); index: (B, H, W, J) rows of table; centers: (B * H * W,) the class of each pixel
        (in 0..R-1); border: (M,) the pixels whose window holds more than one class -> (B, C, H, W)."""
        b, h, w, j = index.shape
        ctx.save_for_backward(index, centers, border)
        ctx.block = block = table.shape[0] // j
        rows = F.embedding(centers, table.view(j, block, -1).sum(dim=0))
        if border.numel():
            rows.index_copy_(0, border, F.embedding_bag(index.reshape(-1, j).index_select(0, border), table,
                                                        mode="sum"))
        return _rows_to_map(rows, b, h, w, channels_last)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        index, centers, border = ctx.saved_tensors
        j = index.shape[-1]
        rows = _to_rows(grad)
        block = rows.new_zeros(ctx.block, rows.shape[1])   # by class, over every pixel ...
        block.index_add_(0, centers, rows)
        border_rows = rows.index_select(0, border) if border.numel() else None
        if border_rows is not None:   # ... less the border pixels, which add their rows offset by offset
            block.index_add_(0, centers.index_select(0, border), border_rows, alpha=-1)
        grad_table = block.repeat(j, 1)
        if border_rows is not None:
            for column in index.reshape(-1, j).index_select(0, border).t():
                grad_table.index_add_(0, column, border_rows)
        return grad_table, None, None, None, None


def _gathered_sum(table, index, weights):
    """The traced graph's _OneHotConv (torch.export, the ONNX export): one gather of table rows per column of
    index (B, Ho, Wo, J), weighted by weights (B, Ho, Wo, J) or not, summed -> (B, C, Ho, Wo). F.embedding_bag
    exports to ONNX as a Loop over its bags, one iteration per output pixel, which ONNX Runtime ran at 0.01x the
    speed of the one-hot graph; J Gather and Add nodes run as fast as the convolution they replace."""
    out = None
    for j in range(index.shape[-1]):
        term = F.embedding(index[..., j], table)
        if weights is not None:
            term = term * weights[..., j, None]
        out = term if out is None else out + term
    return out.permute(0, 3, 1, 2)


def lookup_index(phases, kernel_size, stride, padding, pad_mode, sentinel, weights=None):
    """The rows of a lookup table that a convolution reads: phases, a tuple of P id maps (B, H, W) long in
    [0, sentinel] (sentinel: no pixel), weights (P, H, W) or None -> (index (B, Ho, Wo, P*kh*kw) long, the
    weight of each entry (B, Ho, Wo, P*kh*kw) or None, interior): for each output pixel, each phase and each
    kernel offset d = (u, v), the row d * (sentinel + 1) + class. A pixel read from the zero padding gets the row
    d * (sentinel + 1) + sentinel (a row of zeros) and weight 0; reflection padding reflects the ids. For a
    'same' convolution (stride 1, odd kernel, padding k // 2) of one-hot ids, interior = (the class of every
    pixel (B*H*W,), the pixels whose window holds another class or the zero padding (M,)), else None."""
    kh, kw = kernel_size
    (sh, sw), (ph, pw) = stride, padding
    offsets = torch.arange(kh * kw, device=phases[0].device).view(kh, kw) * (sentinel + 1)
    columns, column_weights = [], []
    for p, phase in enumerate(phases):
        if pad_mode == "zeros":
            padded = F.pad(phase, (pw, pw, ph, ph), value=sentinel)
        else:  # reflect/replicate/circular: pad the ids as the feature map would be padded
            padded = F.pad(phase[:, None].to(torch.float64), (pw, pw, ph, ph), mode=pad_mode)[:, 0].long()
        windows = padded.unfold(1, kh, sh).unfold(2, kw, sw)    # (B, Ho, Wo, kh, kw), a view
        columns.append((windows + offsets).flatten(3))
        if weights is not None:
            padded_weights = F.pad(weights[p], (pw, pw, ph, ph))
            column_weights.append(padded_weights.unfold(0, kh, sh).unfold(1, kw, sw).flatten(2))
    index = columns[0] if len(columns) == 1 else torch.cat(columns, dim=-1)
    if weights is not None:
        return index, torch.cat(column_weights, dim=-1).expand(index.shape).contiguous(), None
    interior = None
    same = (sh, sw) == (1, 1) and (ph, pw) == (kh // 2, kw // 2) and kh % 2 and kw % 2 and kh * kw > 1
    if len(phases) == 1 and same and not (torch.compiler.is_compiling() or torch.compiler.is_exporting()):
        # a 'same' convolution: each output pixel's window is centred on its own input pixel. Eager only: the
        # border's size depends on the data, which a traced graph (torch.compile, ONNX) cannot branch on
        ids = phases[0]
        border = (windows != ids[..., None, None]).flatten(3).any(dim=-1).flatten().nonzero().squeeze(1)
        interior = (ids.flatten(), border)
    return index, None, interior


def lookup_table(weight):
    """weight: (C_out, K, kh, kw), the kernel's class channels -> ((kh*kw) * (K + 1), C_out): for each offset
    d, the K class columns W[:, c, d] and a row of zeros (padding, no pixel)."""
    c_out, k, kh, kw = weight.shape
    table = weight.permute(2, 3, 1, 0)
    table = torch.cat([table, table.new_zeros(kh, kw, 1, c_out)], dim=2)
    return table.reshape(kh * kw * (k + 1), c_out)


def lookup_conv2d(ids, weight, stride=1, padding=0, pad_mode="zeros", weights=None, index=None,
                  channels_last=False):
    """The convolution by `weight` (C_out, K, kh, kw) of the one-hot map of `ids`, as a gather -> (B, C_out, Ho,
    Wo), without bias. ids: (B, H, W) long in [0, K); or a tuple of P id maps (`Layout`'s phases, K meaning no
    pixel) whose one-hot maps are summed, each weighted by `weights` (P, H, W) or, when weights is None, by 1/P.
    `index`: lookup_index's result for these arguments, when the caller keeps it for several convolutions;
    channels_last: the result in that memory format (the --channels_last networks), else contiguous.
    Gradients reach `weight` (the ids are data). Under autocast the table takes autocast's dtype, as the
    convolution's kernel would."""
    stride, padding = nn.modules.utils._pair(stride), nn.modules.utils._pair(padding)
    phases = (ids,) if torch.is_tensor(ids) else tuple(ids)
    c_out, k, kh, kw = weight.shape
    if index is None:
        index = lookup_index(phases, (kh, kw), stride, padding, pad_mode, k, weights)
    table = lookup_table(weight)
    device = table.device.type
    if torch.is_autocast_enabled(device):
        table = table.to(torch.get_autocast_dtype(device))
    rows, entry_weights, interior = index
    if torch.compiler.is_exporting():
        out = _gathered_sum(table, rows, entry_weights)
    elif interior is not None:
        out = _InteriorOneHotConv.apply(table, rows, *interior, channels_last)
    else:
        out = _OneHotConv.apply(table, rows, None if entry_weights is None else entry_weights.to(table.dtype),
                                channels_last)
    if weights is None and len(phases) > 1:
        out = out * (1.0 / len(phases))  # block means: a power of two, exact
    return out


# -------------------------------------------------------------------------------------------------- the layout

def one_hot(ids, num_classes, dtype, phases=None, weights=None):
    """ids: (B, H, W) long -> (B, num_classes, H, W) of dtype. With phases (P id maps (B, h, w), num_classes
    meaning no pixel) instead: the sum of their one-hot maps, weighted by weights (P, h, w) or by 1/P."""
    if phases is None:
        out = torch.zeros(ids.shape[0], num_classes, *ids.shape[1:], dtype=dtype, device=ids.device)
        return out.scatter_(1, ids[:, None], 1.0)
    index = torch.stack(phases, dim=1)   # (B, P, h, w)
    out = torch.zeros(index.shape[0], num_classes + 1, *index.shape[2:], dtype=dtype, device=index.device)
    if weights is None:
        values = out.new_full(index.shape, 1.0 / len(phases))   # block means: sums of 1/f^2, exact
    else:
        values = weights.to(dtype)[None].expand(index.shape)
    return out.scatter_add_(1, index, values)[:, :num_classes]


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


def average_3x3(x):
    """The multiscale discriminator's down-sampling: 3x3 average, stride 2, over the pixels inside the image."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=[1, 1], count_include_pad=False)


def neighbour_phases(ids, sentinel):
    """`average_3x3` of the one-hot map of ids (B, H, W) as phases: the 9 id maps (B, h, w) of the neighbours
    (2i + a - 1, 2j + b - 1), a, b in {0, 1, 2}, `sentinel` where the neighbour lies outside, and their weights
    (9, h, w): 1 / (the neighbours inside) where inside, else 0."""
    b, height, width = ids.shape
    padded = F.pad(ids, (1, 1, 1, 1), value=sentinel)
    h, w = (height - 1) // 2 + 1, (width - 1) // 2 + 1
    phases = tuple(padded[:, a:a + 2 * h - 1:2, c:c + 2 * w - 1:2] for a in range(3) for c in range(3))
    inside = torch.stack([(phase[0] != sentinel) for phase in phases]).to(torch.float64)
    return phases, inside / inside.sum(dim=0, keepdim=True)


class Layout:
    """A batch of layouts as a network reads them: channels [before | K classes | edges | after].

    With class ids (`from_ids`, the trainer's and the Synthesizer's way, or `from_tensor` on a one-hot tensor),
    the K class channels are sum_p weights[p] * one_hot(phases[p]): one phase of weight 1 (`ids`, a one-hot map),
    or several (averages of one; weights None meaning 1/P each). No (B, K, H, W) tensor is made until a layer
    reads the layout densely (`tensor()`). Without (`from_tensor` on any other map), `tensor()` is the map and
    every layer convolves it.

    phases: tuple of (B, H, W) long in [0, K], K meaning no pixel, or None (dense); weights: (P, H, W) or None;
    edges: (B, 1, H, W) or None; before, after: tuples of (B, c, H, W) tensors (OASIS's noise before the classes;
    features or an image a layer reads after them); pad: reflection padding (amount, mode) still to apply to the
    ids (pix2pixHD pads its input by reflection)."""

    def __init__(self, phases, num_classes, edges=None, before=(), after=(), weights=None, pad=None, dtype=None,
                 dense=None):
        self.phases = None if phases is None else (tuple(phases) if not torch.is_tensor(phases) else (phases,))
        self.num_classes, self.edges, self.weights, self.pad = num_classes, edges, weights, pad
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
        return self.phases is None

    @property
    def ids(self):
        """(B, H, W) class ids when the classes are one-hot, else None."""
        if self.phases is None or len(self.phases) != 1 or self.weights is not None:
            return None
        return self.phases[0]

    # ------------------------------------------------------------------------------------------- shape
    @property
    def shape(self):
        if self._dense is not None:
            return self._dense.shape
        b, h, w = self.phases[0].shape
        if self.pad is not None:
            h, w = h + 2 * self.pad[0], w + 2 * self.pad[0]
        channels = self.num_classes + sum(t.shape[1] for t in (*self.before, *self.after))
        return torch.Size((b, channels + int(self.edges is not None), h, w))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    @property
    def device(self):
        return self._dense.device if self._dense is not None else self.phases[0].device

    def to(self, device=None, dtype=None):
        """The layout on `device`, its dense channels (and the one-hot map it makes) in floating `dtype`."""
        move = lambda t: None if t is None else t.to(device=device, dtype=dtype)  # noqa: E731
        if self.dense_only:
            return Layout(None, 0, dense=move(self._dense))
        return Layout([phase.to(device) for phase in self.phases], self.num_classes, move(self.edges),
                      [move(t) for t in self.before], [move(t) for t in self.after],
                      None if self.weights is None else self.weights.to(device), self.pad,
                      dtype if dtype is not None else self.dtype, move(self._dense))

    def tensor(self):
        """The (B, C, H, W) tensor of this layout, as an ordinary layer reads it (made once)."""
        if self._dense is None:
            if self.ids is not None:
                classes = one_hot(self.ids, self.num_classes, self.dtype)
            else:
                classes = one_hot(None, self.num_classes, self.dtype, self.phases, self.weights)
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
        """The Layout with `changes` to its fields, or (dense) dense_fn of its tensor."""
        if self.dense_only:
            return Layout(None, 0, dense=dense_fn(self.tensor()))
        fields = dict(phases=self.phases, num_classes=self.num_classes, edges=self.edges, before=self.before,
                      after=self.after, weights=self.weights, pad=self.pad, dtype=self.dtype)
        fields.update(changes)
        return Layout(**fields)

    def _map_channels(self, fn, **changes):
        """The Layout with fn applied to its edges and dense channels, and `changes`."""
        return self._with(None, edges=None if self.edges is None else fn(self.edges),
                          before=[fn(t) for t in self.before], after=[fn(t) for t in self.after], **changes)

    def resized(self, size):
        """Nearest resize to size (h, w) (F.interpolate's 'nearest'): the ids are resized, not a one-hot tensor."""
        size = tuple(size)
        if tuple(self.shape[2:]) == size:
            return self
        if ("resized", size) not in self._cache:
            self._cache["resized", size] = self._resized(size)
        return self._cache["resized", size]

    def _resized(self, size):
        if self.ids is None or self.pad is not None:
            return Layout(None, 0, dense=resize_nearest(self.tensor(), size))
        h, w = self.ids.shape[1:]
        if h % size[0] == 0 and w % size[1] == 0:
            ids = self.ids[:, ::h // size[0], ::w // size[1]]
        else:   # torch's nearest on the ids (exact for these small integers)
            ids = F.interpolate(self.ids[:, None].to(torch.float64), size=size, mode="nearest")[:, 0].long()
        return self._map_channels(lambda t: resize_nearest(t, size), phases=(ids,))

    def block_mean(self):
        """The bilinear x0.5 resize (align_corners False: the exact 2x2 block mean of each channel), SC-GAN's
        pyramid step: every phase splits into its four 2x2 phases; edges and dense channels are resized. Once
        the phases would be too many for a lookup (pooled_lookup_pays), the level is the tensor's block
        mean: the same values, without 4^t phases to carry (SC-GAN's coarsest level of a 256x256 layout would
        hold 4096, and a traced graph would slice each of them)."""
        half = lambda t: F.interpolate(t, scale_factor=0.5, mode="bilinear", align_corners=False)  # noqa: E731
        if self.dense_only or self.weights is not None or self.pad is not None or \
                not pooled_lookup_pays(4 * len(self.phases), self.num_classes):
            return Layout(None, 0, dense=half(self.tensor()))
        phases = tuple(phase[:, a::2, b::2] for phase in self.phases for a in range(2) for b in range(2))
        return self._map_channels(half, phases=phases)

    def averaged_3x3(self):
        """`average_3x3` of the layout (the multiscale discriminator's next scale): a one-hot layout becomes the
        9 neighbour phases weighted by 1/count; edges and dense channels are averaged."""
        if self.ids is None or self.pad is not None:
            return Layout(None, 0, dense=average_3x3(self.tensor()))
        phases, weights = neighbour_phases(self.ids, self.num_classes)
        return self._map_channels(average_3x3, phases=phases, weights=weights)

    def padded(self, amount, mode):
        """F.pad(tensor(), [amount] * 4, mode=mode) for a reflection or replication mode."""
        if self.ids is None or self.pad is not None:
            return Layout(None, 0, dense=F.pad(self.tensor(), [amount] * 4, mode=mode))
        return self._map_channels(lambda t: F.pad(t, [amount] * 4, mode=mode), pad=(amount, mode))

    def with_before(self, x):
        """The layout with x: (B, c, H, W) as its first channels (torch.cat([x, tensor()], 1))."""
        return self._with(lambda t: torch.cat([x, t], dim=1), before=(x, *self.before))

    def with_after(self, x):
        """The layout with x: (B, c, H, W) as its last channels (torch.cat([tensor(), x], 1))."""
        return self._with(lambda t: torch.cat([t, x], dim=1), after=(*self.after, x))

    def map_dense(self, fn):
        """fn applied to the channels besides the classes (an activation that leaves 0s, 1s and averages of
        them as they are, such as LeakyReLU); a dense layout: fn of its tensor."""
        if self.dense_only:
            return Layout(None, 0, dense=fn(self.tensor()))
        return self._map_channels(fn)

    @staticmethod
    def cat(layouts):
        """Layouts of the same structure concatenated over the batch (torch.cat(..., 0))."""
        first = layouts[0]

        def structure(lay):
            return (len(lay.phases), lay.weights is None, lay.num_classes, lay.pad, lay.edges is None,
                    len(lay.before), len(lay.after))
        if any(lay.dense_only for lay in layouts) or len({structure(lay) for lay in layouts}) > 1 or \
                any(lay.weights is not None and not torch.equal(lay.weights, first.weights) for lay in layouts):
            return Layout(None, 0, dense=torch.cat([lay.tensor() for lay in layouts]))
        return first._with(None, phases=[torch.cat(ps) for ps in zip(*(lay.phases for lay in layouts))],
                           edges=None if first.edges is None else torch.cat([lay.edges for lay in layouts]),
                           before=[torch.cat(ts) for ts in zip(*(lay.before for lay in layouts))],
                           after=[torch.cat(ts) for ts in zip(*(lay.after for lay in layouts))])

    def index_for(self, kernel_size, stride, padding, pad_mode):
        """lookup_index of this layout's phases for a convolution, made once per layout."""
        key = ("index", tuple(kernel_size), tuple(stride), tuple(padding), pad_mode)
        if key not in self._cache:
            self._cache[key] = lookup_index(self.phases, kernel_size, stride, padding, pad_mode, self.num_classes,
                                            self.weights)
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

# When the lookup is the cheaper (measured on the CPU, docs/benchmarks.md): a layout averaged from P phases (SC-GAN's
# pyramid levels, the multiscale discriminator's lower scales) is read by lookup while P * POOLED_LOOKUP_COST <= K
# (its lookup gathers P*k*k rows per output value where the convolution does K*k*k multiply-adds), and a layer
# with fewer than MIN_LOOKUP_PIXELS output pixels in the batch convolves (building the table of k*k*K rows costs
# more than the convolution of so few pixels).
POOLED_LOOKUP_COST = 20
MIN_LOOKUP_PIXELS = 512


def pooled_lookup_pays(phases: int, num_classes: int) -> bool:
    """Whether a layout averaged from `phases` one-hot maps of `num_classes` classes is cheaper read by lookup."""
    return phases * POOLED_LOOKUP_COST <= num_classes


class LayoutConv2d(nn.Conv2d):
    """An nn.Conv2d whose input holds a layout: given a Layout with class ids it convolves the class channels by
    lookup (`lookup_conv2d`) and its other channels (edges, noise, features, an image) with the matching slices
    of its kernel; given a tensor, or a Layout without ids, it is nn.Conv2d. Same parameters and state dict as
    nn.Conv2d; spectral norm parametrizes `weight` as on any conv, and the lookup reads the normalized kernel.

    layout_path: 'lookup' (wherever the classes are one-hot, and for an average of one-hot maps while
    POOLED_LOOKUP_COST says it is the cheaper), 'conv', or 'auto' (the lookup on the device types of
    AUTO_LOOKUP_DEVICES)."""

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
        out = lookup_conv2d(x.phases, weight[:, start:start + k], self.stride, padding, pad_mode, x.weights, index,
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
        if x.dense_only or not self.reads_by_lookup(x.device) or self.groups != 1 or self.dilation != (1, 1):
            return False
        if x.shape[1] != self.in_channels:
            return False   # nn.Conv2d names the mismatch
        if x.pad is not None and self.padding != (0, 0):
            return False
        b, _, h, w = x.shape
        if b * h * w < MIN_LOOKUP_PIXELS * self.stride[0] * self.stride[1]:
            return False
        return len(x.phases) == 1 or pooled_lookup_pays(len(x.phases), x.num_classes)


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
