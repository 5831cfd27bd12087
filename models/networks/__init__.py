"""Network registries and builders.

`--netG NAME` resolves to the class registered with ``@GENERATORS.register(NAME)``; the same for `--netD`
(DISCRIMINATORS) and `--netE` (ENCODERS). Each registered class turns options into constructor arguments in
its ``from_opt`` classmethod; nothing below it reads `opt`. Every network module is imported here, so
registration never depends on what happened to be imported elsewhere.
"""
from util.registry import Registry

from .base_network import to_channels_last  # noqa: F401  (the trainer's --channels_last)

GENERATORS = Registry("generator", "--netG")
DISCRIMINATORS = Registry("discriminator", "--netD")
ENCODERS = Registry("encoder", "--netE")

from . import (generator, discriminator, encoder, scgan, scgan_unpaired,  # noqa: E402,F401  (registration)
               fpse_discriminator, oasis_discriminator, ccfpse)


def create_network(cls, opt, device=None, verbose=True):
    net = cls.from_opt(opt)
    if verbose:
        net.print_network()
    net.init_weights(opt.init_type, opt.init_variance)
    if device is not None:
        net.to(device)
    return net


def define_G(opt, device=None, verbose=True):
    return create_network(GENERATORS.get(opt.netG), opt, device, verbose)


def define_D(opt, device=None, verbose=True):
    return create_network(DISCRIMINATORS.get(opt.netD), opt, device, verbose)


def define_E(opt, device=None, verbose=True):
    return create_network(ENCODERS.get(opt.netE), opt, device, verbose)
