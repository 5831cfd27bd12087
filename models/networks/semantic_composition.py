"""SC-GAN's operators (Wang, Qi, Chen, Zhang and Jia, ICCV 2021, §3.2, Fig. 4, Alg. 1-2):

- SCConv2d: spatially conditional convolution, Eq. 4: out(r,c) = sum_i V[i,r,c] * (k_i * x)(r,c);
- SCNorm: spatially conditional normalization, Eq. 5: BN(x) * (1 + sum_i V_i s_i) + sum_i V_i m_i;
- SCResBlock: the residual block of Fig. 4 built from them.

Also the Table 3 baselines that the block can be built with instead: a plain conv stack reading V
concatenated to its input (`--sc_conv conv`) and an ordinary affine batch norm (`--sc_norm bn`).
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrize

from .normalization import SPADE, autocast_off, batch_norm, spectral_norm
from .normalization import param_free_norm as make_param_free_norm


class DivideBySigma(torch.autograd.Function):
    """weight / sigma_i per candidate, sigma_i = u_i^T W_i v_i (u, v constants), with the exact gradient
    (g - <g, W_i / sigma_i> u_i v_i^T) / sigma_i written as two passes over the kernels: autograd's division
    and einsum backward make several kernel-sized temporaries (outer products, negations) instead."""

    @staticmethod
    def forward(ctx, weight, u, v):
        """weight: (n, C_out, C_in, k, k); u: (n, C_out); v: (n, C_in*k*k) -> weight / sigma, same shape."""
        sigma = torch.einsum("no,nok,nk->n", u, weight.flatten(2), v)
        ctx.save_for_backward(weight, u, v, sigma)
        return weight / sigma.view(-1, 1, 1, 1, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        weight, u, v, sigma = ctx.saved_tensors
        n = weight.shape[0]
        grad_mats, mats = grad.reshape(n, 1, -1), weight.reshape(n, -1, 1)
        inner = torch.bmm(grad_mats, mats).view(n) / sigma.square()  # <g, W_i> / sigma_i^2
        # contiguous whatever grad's layout (a channels-last conv hands its kernels' gradient back permuted): the
        # in-place update below writes through a view of it
        grad_weight = (grad / sigma.view(-1, 1, 1, 1, 1)).contiguous()
        grad_weight.view(n, u.shape[1], -1).baddbmm_((u * -inner.view(n, 1)).unsqueeze(2), v.unsqueeze(1))
        return grad_weight, None, None


class CandidateSpectralNorm(nn.Module):
    """Parametrization of a stack of n kernels (n, C_out, C_in, k, k): each candidate divided by its own
    largest singular value, estimated by one batched power iteration per training step. AMP-safe: the
    iteration and sigma run in fp32 with autocast off (bmm and einsum would otherwise run in half precision)."""

    def __init__(self, weight: torch.Tensor, n_power_iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        n, c_out = weight.shape[:2]
        self.n_power_iterations, self.eps = n_power_iterations, eps
        mats = weight.detach().flatten(2)
        self.register_buffer("_u", F.normalize(mats.new_empty(n, c_out).normal_(0, 1), dim=1, eps=eps))
        self.register_buffer("_v", F.normalize(mats.new_empty(n, mats.shape[2]).normal_(0, 1), dim=1, eps=eps))
        self._power_method(mats, 15)

    @torch.no_grad()
    def _power_method(self, mats, iterations):
        for _ in range(iterations):
            self._u.copy_(F.normalize(torch.bmm(mats, self._v.unsqueeze(2)).squeeze(2), dim=1, eps=self.eps))
            self._v.copy_(F.normalize(torch.bmm(mats.transpose(1, 2), self._u.unsqueeze(2)).squeeze(2),
                                      dim=1, eps=self.eps))

    def forward(self, weight):
        with autocast_off(weight):
            if self.training:
                self._power_method(weight.detach().flatten(2), self.n_power_iterations)
            # clones: the buffers change in place at the next step
            return DivideBySigma.apply(weight, self._u.clone(), self._v.clone())


class CandidateSum(torch.autograd.Function):
    """out = sum_i y[:, i] * v[:, i, None]: the per-pixel mix of the candidates' conv outputs, with a hand-written
    backward (about 2.5x faster on the CPU than autograd's broadcast multiply-and-sum).

    AMP-safe by explicit casts: the mix runs in y's dtype (the conv's, chosen by autocast) with v cast to it,
    so the (B, n, C, H, W) products are never promoted to fp32 by an fp32 v; each gradient returns in the
    dtype of its input."""

    @staticmethod
    def forward(ctx, y, v):
        """y: (B, n, C, H, W) candidate outputs; v: (B, n, H, W) -> (B, C, H, W) in y's dtype."""
        ctx.v_dtype = v.dtype
        v = v.to(y.dtype)
        ctx.save_for_backward(y, v)
        return (y * v.unsqueeze(2)).sum(dim=1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        y, v = ctx.saved_tensors
        grad = grad.to(y.dtype).unsqueeze(1)
        grad_y = grad * v.unsqueeze(2) if ctx.needs_input_grad[0] else None
        grad_v = (y * grad).sum(dim=2).to(ctx.v_dtype) if ctx.needs_input_grad[1] else None
        return grad_y, grad_v


class SCConv2d(nn.Module):
    """Spatially conditional convolution (Eq. 4). The n candidate kernels are stacked into ONE convolution
    with n * C_out outputs; the per-pixel weighted sum over candidates follows. Stride 1, 'same' padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_candidates: int,
                 bias: bool = False, spectral: bool = False):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.n_candidates = kernel_size, n_candidates
        self.weight = nn.Parameter(torch.empty(n_candidates, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        for k in self.weight.data.unbind(0):  # xavier-normal(0.02) per candidate, as the authors' code
            nn.init.xavier_normal_(k, gain=0.02)
        if spectral:
            parametrize.register_parametrization(self, "weight", CandidateSpectralNorm(self.weight))

    def forward(self, x, v):
        """x: (B, C_in, H, W); v: (B, n, H, W) semantic vectors -> (B, C_out, H, W)."""
        b, _, h, w = x.shape
        n, c_out = self.n_candidates, self.out_channels
        kernels = self.weight.reshape(n * c_out, self.in_channels, self.kernel_size, self.kernel_size)
        y = F.conv2d(x, kernels, padding=self.kernel_size // 2).view(b, n, c_out, h, w)
        out = CandidateSum.apply(y, v)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"n_candidates={self.n_candidates}, bias={self.bias is not None}")


class SpatialModulation(torch.autograd.Function):
    """out = normalized * (1 + s_hat) + m_hat with s_hat = sum_i V_i s_i, m_hat = sum_i V_i m_i (Eq. 5 after the
    norm). Saves only the normalized input and V for backward and recomputes s_hat there (a rank-n product,
    cheap): autograd would also keep the (B, C, H, W) tensor 1 + s_hat alive until backward."""

    @staticmethod
    def forward(ctx, normalized, v, scale, shift):
        """normalized: (B, C, H, W); v: (B, n, H, W); scale, shift: (n, C) -> (B, C, H, W)."""
        s_hat = torch.einsum("bnhw,nc->bchw", v, scale)
        m_hat = torch.einsum("bnhw,nc->bchw", v, shift)
        ctx.save_for_backward(normalized, v, scale, shift)
        ctx.compute_dtype = s_hat.dtype  # autocast's choice for the einsum, reused when recomputing it
        return normalized * (1 + s_hat) + m_hat

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        normalized, v, scale, shift = ctx.saved_tensors
        dt = ctx.compute_dtype
        grad = grad.to(dt)
        grad_normalized = grad_v = grad_scale = grad_shift = None
        if ctx.needs_input_grad[0]:
            s_hat = torch.einsum("bnhw,nc->bchw", v.to(dt), scale.to(dt))
            grad_normalized = (grad * (1 + s_hat)).to(normalized.dtype)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grad_x = grad * normalized.to(dt)
            if ctx.needs_input_grad[2]:
                grad_scale = torch.einsum("bnhw,bchw->nc", v.to(dt), grad_x).to(scale.dtype)
            if ctx.needs_input_grad[1]:
                grad_v = (torch.einsum("bchw,nc->bnhw", grad_x, scale.to(dt))
                          + torch.einsum("bchw,nc->bnhw", grad, shift.to(dt))).to(v.dtype)
        if ctx.needs_input_grad[3]:
            grad_shift = torch.einsum("bnhw,bchw->nc", v.to(dt), grad).to(shift.dtype)
        return grad_normalized, grad_v, grad_scale, grad_shift


class SCNorm(nn.Module):
    """Spatially conditional normalization (Eq. 5, Alg. 2): parameter-free norm, then a per-pixel scale and
    shift mixed from n learnable candidates by the semantic vectors. Candidates start at 0 in the (1 + s)
    form, i.e. the paper's scale 1 and mean 0."""

    def __init__(self, channels: int, n_candidates: int, param_free_norm: str = "batch"):
        super().__init__()
        self.param_free_norm = make_param_free_norm(param_free_norm, channels)
        self.scale = nn.Parameter(torch.zeros(n_candidates, channels))  # s_i, in the (1 + s) form
        self.shift = nn.Parameter(torch.zeros(n_candidates, channels))  # m_i

    def forward(self, x, v):
        """x: (B, C, H, W); v: (B, n, H, W) -> (B, C, H, W)."""
        return SpatialModulation.apply(self.param_free_norm(x), v, self.scale, self.shift)


class VConcatConv(nn.Module):
    """Table 3 baseline for SCC: `n_convs` plain 3x3 convs in a row, each reading V concatenated to its input
    (LReLU between them), so the capacity matches an SCC with as many candidates."""

    def __init__(self, in_channels: int, out_channels: int, v_channels: int, n_convs: int, spectral: bool = False):
        super().__init__()
        convs = []
        for i in range(n_convs):
            conv = nn.Conv2d((in_channels if i == 0 else out_channels) + v_channels, out_channels, 3, padding=1)
            convs.append(spectral_norm(conv) if spectral else conv)
        self.convs = nn.ModuleList(convs)

    def forward(self, x, v):
        """x: (B, C_in, H, W); v: (B, n, H, W) -> (B, C_out, H, W)."""
        for i, conv in enumerate(self.convs):
            if i > 0:
                x = F.leaky_relu(x, 0.2)
            x = conv(torch.cat([x, v], dim=1))
        return x


class AffineNorm(nn.Module):
    """Table 3 baseline for SCN: batch norm with one learned scale and shift per channel; V is ignored."""

    def __init__(self, channels: int, param_free_norm: str = "batch"):
        super().__init__()
        if param_free_norm == "instance":
            self.norm = nn.InstanceNorm2d(channels, affine=True)
        else:
            self.norm = batch_norm(param_free_norm, channels, affine=True)

    def forward(self, x, v):
        return self.norm(x)


class SCResBlock(nn.Module):
    """Fig. 4: dx = SCC_1(LReLU(SCN_1(SCC_0(LReLU(SCN_0(x)))))), both SCNs reading v_norm and both SCCs v_conv;
    out = shortcut(x) + dx. The shortcut is x when fin == fout, else a spectral-normed 3x3 conv (with bias) of
    a SPADE-normalized x conditioned on the layout (as the authors' released code)."""

    def __init__(self, fin: int, fout: int, n_conv: int, n_norm: int, semantic_nc: int, spectral: bool = True,
                 param_free: str = "syncbatch", sc_conv: str = "scc", sc_norm: str = "scn"):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmid = min(fin, fout)

        def conv(cin, cout):
            if sc_conv == "scc":
                return SCConv2d(cin, cout, 3, n_conv, bias=False, spectral=spectral)
            if sc_conv == "conv":
                return VConcatConv(cin, cout, n_conv, n_convs=n_conv, spectral=spectral)
            raise ValueError(f"--sc_conv {sc_conv}: expected scc or conv")

        def norm(channels):
            if sc_norm == "scn":
                return SCNorm(channels, n_norm, param_free)
            if sc_norm == "bn":
                return AffineNorm(channels, param_free)
            raise ValueError(f"--sc_norm {sc_norm}: expected scn or bn")

        self.norm_0, self.conv_0 = norm(fin), conv(fin, fmid)
        self.norm_1, self.conv_1 = norm(fmid), conv(fmid, fout)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, semantic_nc, param_free, 3)
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 3, padding=1, bias=True))

    def forward(self, x, v_conv, v_norm, seg):
        """x: (B, fin, H, W); v_conv: (B, n_conv, H, W); v_norm: (B, n_norm, H, W); seg: (B, semantic_nc, H', W')
        -> (B, fout, H, W)."""
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        # In place: the activation then saves for backward the same tensor as the conv after it.
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, v_norm), 0.2, inplace=True), v_conv)
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, v_norm), 0.2, inplace=True), v_conv)
        return x_s + dx
