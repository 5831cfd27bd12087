"""Parameter counts of the networks that the given options build, without data:

    python -m tools.summary --netG scgan --dataset_mode coco [any train.py option]

prints one table per network (each top-level block; the SC-GAN generator also split into its SVG and SRG)
and ends with one line per network, e.g. `G scgan: 41,846,838 parameters`.
"""
import sys

from models import networks


def count(module):
    return sum(p.numel() for p in module.parameters())


def rows(net):
    """(name, count) for each top-level block; for SC-GAN the SVG's stages and SRG subtotals too."""
    out = []
    for name, child in net.named_children():
        n = count(child)
        if n:
            out.append((name, n))
        if name == "svg":  # each SVG stage (V_1, V_2, ...) and its image head
            out += [(f"  svg.stages.{i} (V{i + 1})", count(m)) for i, m in enumerate(child.stages)]
            out.append(("  svg.to_image", count(child.to_image)))
    if hasattr(net, "svg"):
        svg = count(net.svg)
        out += [("= SVG (semantic vector generator)", svg), ("= SRG (semantic render generator)", count(net) - svg)]
    return out


def summarize(opt, out=None):
    out = out or sys.stdout
    built = [("G", opt.netG, networks.define_G(opt, verbose=False)),
             ("D", opt.netD, networks.define_D(opt, verbose=False))]
    if opt.use_vae:
        built.append(("E", opt.netE, networks.define_E(opt, verbose=False)))
    for kind, name, net in built:
        print(f"\n{kind} {name} ({type(net).__name__})", file=out)
        for row_name, n in rows(net):
            print(f"  {row_name:<40} {n:>14,}", file=out)
    print(file=out)
    for kind, name, net in built:
        print(f"{kind} {name}: {count(net):,} parameters", file=out)
    return {kind: count(net) for kind, _, net in built}
