"""Model registry: `--model pix2pix` resolves to the wrapper registered with ``@MODELS.register``."""
from util.registry import Registry

MODELS = Registry("model", "--model")

from . import pix2pix_model, unpaired_model  # noqa: E402,F401  (registration)


def create_model(opt, device=None, verbose=True):
    """The --model wrapper with its networks on `device` (by default the first of --gpu_ids, or the CPU)."""
    model = MODELS.get(opt.model)(opt, device=device)
    if verbose:
        print(f"model [{type(model).__name__}] was created")
    return model
