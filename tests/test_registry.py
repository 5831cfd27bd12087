"""The decorator registries: loud failures and complete registration (util/registry.py)."""
import pytest

import data
import models
from models import networks
from util.registry import Registry, RegistryError


def test_unknown_name_lists_the_registered_ones():
    registry = Registry("generator", "--netG")
    registry.register("b")(type("B", (), {}))
    registry.register("a")(type("A", (), {}))
    with pytest.raises(RegistryError, match="--netG c: unknown generator; registered: a, b"):
        registry.get("c")
    assert registry.get("a").__name__ == "A" and registry.get("a").registered_name == "a"


def test_duplicate_registration_raises():
    registry = Registry("thing", "--thing")
    registry.register("x")(type("First", (), {}))
    with pytest.raises(RegistryError, match="'x' is registered twice: by First and by Second"):
        registry.register("x")(type("Second", (), {}))


def test_every_registry_is_filled_by_importing_its_package():
    assert networks.GENERATORS.names() == ["ccfpse", "pix2pixhd", "scgan", "scgan_unpaired", "spade"]
    assert networks.DISCRIMINATORS.names() == ["fpse", "multiscale", "oasis"]
    assert networks.ENCODERS.names() == ["conv"]
    assert models.MODELS.names() == ["pix2pix", "unpaired"]
    assert data.DATASETS.names() == ["ade20k", "celebamaskhq", "cityscapes", "coco", "custom", "landscapes",
                                     "synthetic", "synthetic_unaligned", "unaligned"]
