"""BaseNetwork: parameter count print-out, SPADE's weight initialisation, and the state-dict key layout of
NVlabs SPADE (hook-based spectral-norm keys `weight_orig`, `weight_u`, `weight_v`): our parametrized layers
save in that layout and load it, so checkpoint files go both ways between the two codebases."""
import torch
from torch import nn
from torch.nn import init
from torch.nn.utils import parametrize

# Hook-based torch.nn.utils.spectral_norm (what NVlabs SPADE saved) -> torch.nn.utils.parametrizations.
LEGACY_SPECTRAL_SUFFIXES = {
    "weight_orig": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}
PARAMETRIZED_SUFFIXES = {v: k for k, v in LEGACY_SPECTRAL_SUFFIXES.items()}


def weight_parameter(module):
    """The trainable tensor behind ``module.weight`` (the un-normalized one under spectral norm)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def to_channels_last(net: nn.Module) -> nn.Module:
    """The --channels_last switch: every 4-D parameter and buffer of `net` (conv kernels, SC-GAN's (n, C, 1, 1)
    channel-pooling kernels) in place into the channels-last layout, everything else left as it is.
    Module.to(memory_format=torch.channels_last) would also try the 5-D tensors, and refuses SC-GAN's stacks of
    candidate kernels (n, C_out, C_in, k, k); a convolution fed channels-last activations runs channels-last
    whatever its kernel's layout, so they need no conversion."""
    with torch.no_grad():
        for tensor in (*net.parameters(), *net.buffers()):
            if tensor.dim() == 4:
                tensor.data = tensor.data.contiguous(memory_format=torch.channels_last)
    return net


class BaseNetwork(nn.Module):
    # Per-dataset option defaults applied when this network is chosen (see options/base_options.py).
    dataset_presets = {}
    # Images a generator returns besides its output with return_aux=True, shown on the training page
    # (SC-GAN: the SVG's image).
    extra_images = ()
    # Discriminators: False for those that score real/fake, called D(seg, image) -> (scores, feature groups);
    # True for one that segments the image into N classes + "fake", called D(image) -> logits (OASIS).
    segments_image = False

    def __init__(self):
        super().__init__()
        self.register_load_state_dict_pre_hook(map_legacy_spectral_keys)
        self.register_state_dict_post_hook(save_legacy_spectral_keys)

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    @staticmethod
    def extra_criteria(opt, vgg):
        """A generator's own loss terms: {name: (aux image compared with the real image, criterion, weight)}.
        `vgg()` returns the shared VGG perceptual loss (built on first use). Generic code names and weights them
        like the others; the default has none."""
        return {}

    @staticmethod
    def uses_vgg(opt):
        """Whether `extra_criteria` asks for the VGG network (so its weights file is needed); the default: no."""
        return False

    @staticmethod
    def extra_loss_weights(opt):
        """A discriminator's own loss terms: {name: weight} (OASIS: D_LabelMix); the default has none."""
        return {}

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    def print_network(self):
        print(f"Network [{type(self).__name__}] was created. Total number of parameters: "
              f"{self.num_parameters() / 1e6:.1f} million. To see the architecture, do print(network).")

    def init_weights(self, init_type="xavier", gain=0.02):
        """SPADE's scheme: BatchNorm weight ~ N(1, gain), conv/linear weights by `init_type`, biases 0.
        A 5-D weight is a stack of candidate kernels (SCConv2d): each candidate is initialised on its own."""
        def init_func(m):
            classname = type(m).__name__
            if "BatchNorm2d" in classname:
                if m.weight is not None:
                    init.normal_(m.weight, 1.0, gain)
                if m.bias is not None:
                    init.constant_(m.bias, 0.0)
            elif ("Conv" in classname or "Linear" in classname) and getattr(m, "weight", None) is not None:
                weight = weight_parameter(m)
                kernels = weight.unbind(0) if weight.dim() == 5 else [weight]
                with torch.no_grad():
                    for w in kernels:
                        init_tensor(w, init_type, gain)
                if getattr(m, "bias", None) is not None and init_type != "none":
                    init.constant_(m.bias, 0.0)
        self.apply(init_func)


def init_tensor(w, init_type, gain):
    if init_type == "normal":
        init.normal_(w, 0.0, gain)
    elif init_type == "xavier":
        init.xavier_normal_(w, gain=gain)
    elif init_type == "xavier_uniform":
        init.xavier_uniform_(w, gain=1.0)
    elif init_type == "kaiming":
        init.kaiming_normal_(w, a=0, mode="fan_in")
    elif init_type == "orthogonal":
        init.orthogonal_(w, gain=gain)
    elif init_type == "none":
        pass  # keep PyTorch's default initialisation, done at construction
    else:
        raise ValueError(f"--init_type {init_type}: unknown initialisation")


def map_legacy_spectral_keys(module, state_dict, prefix, local_metadata, strict, missing_keys,
                             unexpected_keys, error_msgs):
    """Rename `conv.weight_orig/_u/_v` (NVlabs checkpoints) to the parametrization keys, where ours has them."""
    # the module's own names (state_dict() itself reports the legacy layout, see save_legacy_spectral_keys)
    own = {name for name, _ in module.named_parameters()} | {name for name, _ in module.named_buffers()}
    for key in list(state_dict.keys()):
        if not key.startswith(prefix):
            continue
        head, _, last = key.rpartition(".")
        if last in LEGACY_SPECTRAL_SUFFIXES:
            new_key = f"{head}.{LEGACY_SPECTRAL_SUFFIXES[last]}" if head else LEGACY_SPECTRAL_SUFFIXES[last]
            if new_key[len(prefix):] in own:
                state_dict[new_key] = state_dict.pop(key)


def save_legacy_spectral_keys(module, state_dict, prefix, local_metadata):
    """The inverse of `map_legacy_spectral_keys`: `conv.parametrizations.weight.original/0._u/0._v` are saved as
    `conv.weight_orig/_u/_v`, the keys NVlabs SPADE's (and the SC-GAN authors') torch.nn.utils.spectral_norm
    writes and reads. The order of the keys is kept."""
    renamed = {}
    for key in state_dict:
        for suffix, legacy in PARAMETRIZED_SUFFIXES.items():
            if key.startswith(prefix) and key.endswith("." + suffix):
                renamed[key] = key[:-len(suffix)] + legacy
                break
    if not renamed:
        return
    items = [(renamed.get(k, k), v) for k, v in state_dict.items()]
    state_dict.clear()
    state_dict.update(items)
