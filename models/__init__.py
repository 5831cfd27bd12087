"""Model registry: `--model pix2pix` resolves to the wrapper registered with ``@MODELS.register``."""
from util.registry import Registry

MODELS = Registry("model", "--model")

from . import pix2pix_model  # noqa: E402,F401  (registration)


def create_model(opt):
    model = MODELS.get(opt.model)(opt)
    print(f"model [{type(model).__name__}] was created")
    return model
