"""The SC-GAN paper's ablations (§4.3), retrained at the demo's budget on the synthetic faces, with replicate seeds.

    python -m benchmarks.ablation [--tables 3,4,6] [--seeds 3] [--epochs N] [--dataset_mode synthetic]
        [--dataroot DIR] [--gpu_ids -1] [--seg_model FILE] [--eval_images 200] [--out ablation] [--dry_run]
        [--variants KEY,KEY] [--dataset_args '...'] [--train_args '...'] [--eval_args '...']

Variants, each an option of --netG scgan (models/networks/scgan.py); "default" is SC-GAN as configured (SCC+SCN,
L_s with l1, softmax), trained once per seed and shown in every table that holds it:
  Table 3, operators:         Conv+BN, Conv+SCN, SCC+BN, SCC+SCN     (--sc_conv conv, --sc_norm bn)
  Table 4, L_s:               w/o L_s, l1, l2, vgg                   (--sv_loss none|l2|vgg; vgg only when the
                                                                      --vgg_weights file exists)
  Table 5, SCC candidates n:  8, 4, 2, 1 with 4 SCN candidates       (--sc_conv_candidates, --sc_norm_candidates)
  Table 6, g of Eq. 2:        sigmoid, tanh, relu, none, softmax     (--sv_activation)
Every run is `train.py --netG scgan --dataset_mode D --seed S` plus its variant's options (with the dataset's
defaults: for synthetic the demo's 64x64, 5 + 5 epochs of 200 images), then `evaluate.py --metrics fid,lpips,miou
--seed 0` on the first --eval_images test images, so every run is measured on the same images with one segmenter:
for the generated datasets (synthetic, landscapes) the bundled U-Net (python -m tools.train_segmenter, trained
once into OUT/DATASET_seg.pt); for real datasets give the published segmenter with --seg_model. Each table is then
written by tools.compare (evaluation/report.py) to OUT/tableN/ (index.html, report.md), one row per variant: the
mean ± sample standard deviation over the seeds, and miou_ratio, the segmenter's mIoU on the synthesized images
over its mIoU on the real ones. OUT/README.md links the tables and lists the paper's numbers (Cityscapes) beside them.

Resuming: a run whose metrics.json exists is skipped; a trained run is only evaluated; an interrupted one goes
on with --continue_train. CPU time of every train and evaluate is added to OUT/timings.json. The machinery (runs,
resume, the protocol, timings) is benchmarks/grid.py, shared with benchmarks.compare_generators.
"""
import argparse
import os
import shlex
import sys
from collections import OrderedDict

from benchmarks import grid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VGG = os.path.join("~", ".cache", "torch", "hub", "checkpoints", "vgg19-dcbb9e9d.pth")

# table -> [(variant key, the paper's column label, options of train.py)], in the paper's column order
TABLES = OrderedDict([
    (3, [("conv_bn", "Conv+BN", ["--sc_conv", "conv", "--sc_norm", "bn"]),
         ("conv_scn", "Conv+SCN", ["--sc_conv", "conv"]),
         ("scc_bn", "SCC+BN", ["--sc_norm", "bn"]),
         ("default", "SCC+SCN", [])]),
    (4, [("no_ls", "w/o L_s", ["--sv_loss", "none"]),
         ("default", "L_s (l1)", []),
         ("ls_l2", "L_s (l2)", ["--sv_loss", "l2"]),
         ("ls_vgg", "L_s (vgg)", ["--sv_loss", "vgg"])]),
    (5, [(f"n{n}", f"n = {n}", ["--sc_conv_candidates", str(n), "--sc_norm_candidates", "4"]) for n in (8, 4, 2, 1)]),
    (6, [("sigmoid", "Sigmoid", ["--sv_activation", "sigmoid"]),
         ("tanh", "Tanh", ["--sv_activation", "tanh"]),
         ("relu", "ReLU", ["--sv_activation", "relu"]),
         ("none", "None", ["--sv_activation", "none"]),
         ("default", "Softmax", [])]),
])
TITLES = {3: "operators of the SRG", 4: "semantic vector generation loss L_s", 5: "SCC weight candidates n",
          6: "nonlinearity g of the semantic vectors"}
# The paper's numbers (Cityscapes, Tables 3-6), per variant label: (mIoU in percent, FID or None).
PAPER = {3: {"Conv+BN": (62.6, 69.7), "Conv+SCN": (63.1, 60.9), "SCC+BN": (66.3, 54.0), "SCC+SCN": (66.9, 49.5)},
         4: {"w/o L_s": (60.3, 82.5), "L_s (l1)": (66.9, 49.5), "L_s (l2)": (63.4, 53.3), "L_s (vgg)": (64.2, 51.8)},
         5: {"n = 8": (67.9, None), "n = 4": (67.3, None), "n = 2": (64.8, None), "n = 1": (61.2, None)},
         6: {"Sigmoid": (62.6, 57.6), "Tanh": (63.1, 56.8), "ReLU": (61.7, 66.5), "None": (60.2, 73.9),
             "Softmax": (66.9, 49.5)}}


def parse_tables(text):
    try:
        tables = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        tables = None
    if not tables or any(t not in TABLES for t in tables):
        raise argparse.ArgumentTypeError(f"--tables {text}: choose from {','.join(map(str, TABLES))}")
    return tables


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=parse_tables, default=[3, 4, 6], help="paper tables, e.g. 3,4,6 (or 5)")
    parser.add_argument("--variants", default="",
                        help="only these variant keys (e.g. default,conv_bn); all of the tables' by default")
    parser.add_argument("--seeds", type=int, default=3, help="replicate runs per variant, seeds 0..N-1")
    parser.add_argument("--epochs", type=int, default=None,
                        help="total epochs (half at the full learning rate, half decaying); default: the dataset's "
                             "(synthetic: the demo's 5 + 5)")
    parser.add_argument("--dataset_mode", default="synthetic")
    parser.add_argument("--dataroot", default=None, help="the dataset's folder (real datasets)")
    parser.add_argument("--gpu_ids", default="-1", help="for train.py and evaluate.py (-1: the CPU)")
    parser.add_argument("--seg_model", default="",
                        help="segmenter for mIoU (TorchScript); default for synthetic and landscapes: "
                             "OUT/DATASET_seg.pt, trained first with python -m tools.train_segmenter")
    parser.add_argument("--seg_iterations", type=int, default=400, help="steps of that synthetic segmenter")
    parser.add_argument("--eval_images", type=int, default=200, help="test images per evaluation (FID's count)")
    parser.add_argument("--vgg_weights", default=DEFAULT_VGG, help="VGG19 file; the L_s (vgg) variant needs it")
    parser.add_argument("--dataset_args", default="",
                        help="more dataset options for every command, quoted as one (e.g. '--num_synthetic 400')")
    parser.add_argument("--train_args", default="", help="more train.py options for every run, quoted as one")
    parser.add_argument("--eval_args", default="", help="more evaluate.py options, e.g. '--seg_label_map FILE'")
    parser.add_argument("--out", default="ablation", help="folder for checkpoints/, results/ and the tables")
    parser.add_argument("--prefix", default="ablation", help="experiment names: PREFIX_VARIANT_seedS")
    parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
    return parser.parse_args(argv)


# ------------------------------------------------------------------------------------------------ planning
def variants(opt):
    """-> (OrderedDict variant key -> train.py options, {table: [(label, key)]}, [skipped lines])."""
    keep = {v for v in opt.variants.split(",") if v}
    unknown = keep - {key for table in TABLES.values() for key, _, _ in table}
    if unknown:
        sys.exit(f"error: --variants {','.join(sorted(unknown))}: unknown; the tables have "
                 f"{', '.join(sorted({key for table in TABLES.values() for key, _, _ in table}))}")
    runs, columns, skipped = OrderedDict(), OrderedDict(), []
    vgg = os.path.expanduser(opt.vgg_weights)
    for table in opt.tables:
        columns[table] = []
        for key, label, options in TABLES[table]:
            if keep and key not in keep:
                continue
            if key == "ls_vgg":
                if not os.path.isfile(vgg):
                    skipped.append(f"Table {table}, {label}: skipped, no VGG19 weights at {vgg} (--vgg_weights)")
                    continue
                options = options + ["--vgg_weights", vgg]
            runs[key] = options
            columns[table].append((label, key))
    return runs, columns, skipped


def experiment_name(opt, key, seed):
    return f"{opt.prefix}_{key}_seed{seed}"


def dataset(opt):
    """The grid's one dataset: its options for every command, and the segmenter (the bundled U-Net, trained into
    OUT/DATASET_seg.pt, unless --seg_model names one)."""
    arguments = (*(["--dataroot", opt.dataroot] if opt.dataroot else []), *shlex.split(opt.dataset_args))
    return grid.Dataset(opt.dataset_mode, arguments, opt.seg_model or grid.bundled_segmenter(opt.out, opt.dataset_mode),
                        train_segmenter=not opt.seg_model)


def protocol(opt):
    return grid.Protocol(images=opt.eval_images, seg_iterations=opt.seg_iterations,
                         eval_args=tuple(shlex.split(opt.eval_args)), gpu_ids=opt.gpu_ids)


def runs(opt, options_of):
    """Every (variant, seed) as a grid.Run of `train.py --netG scgan` with the variant's options."""
    epochs = []
    if opt.epochs is not None:
        epochs = ["--niter", str((opt.epochs + 1) // 2), "--niter_decay", str(opt.epochs // 2)]
    data = dataset(opt)
    return [grid.Run(experiment_name(opt, key, seed), data, seed,
                     ("--netG", "scgan", *epochs, *options, *shlex.split(opt.train_args)))
            for key, options in options_of.items() for seed in range(opt.seeds)]


def write_reports(opt, columns):
    """OUT/tableN/ through tools.compare, and OUT/README.md linking them beside the paper's numbers."""
    from evaluation.report import compare
    checkpoints, results = grid.folders(opt.out)
    seeds = f"{opt.seeds} seed{'s' if opt.seeds > 1 else ''}"
    lines = [f"# SC-GAN ablations on {opt.dataset_mode}, {seeds} per variant", "",
             "Written by `python -m benchmarks.ablation`. Paper: Cityscapes, one run each (Tables 3-6 of Wang et "
             "al., ICCV 2021); mIoU in percent there, a fraction here. Rows: mean ± sample std over the seeds.", ""]
    for table, cells in columns.items():
        if not cells:
            continue
        names = [experiment_name(opt, key, seed) for _, key in cells for seed in range(opt.seeds)]
        groups = OrderedDict((label, [experiment_name(opt, key, s) for s in range(opt.seeds)]) for label, key in cells)
        out = os.path.join(opt.out, f"table{table}")
        _, _, rows = compare(names, checkpoints_dir=checkpoints, results_dir=results, groups=groups, out=out,
                             title=f"Table {table}: {TITLES[table]} ({opt.dataset_mode}, {seeds})")
        lines += [f"## Table {table}: {TITLES[table]}: [page](table{table}/index.html), "
                  f"[markdown](table{table}/report.md)", "",
                  "| variant | paper mIoU | paper FID | miou_ratio here | FID here | LPIPS here | n |",
                  "|---|---|---|---|---|---|---|"]
        from evaluation.report import format_cell
        for row in rows:
            miou, fid = PAPER[table].get(row["name"], (None, None))
            lines.append(f"| {row['name']} | {'—' if miou is None else miou} | {'—' if fid is None else fid} | "
                         f"{format_cell(row['metrics'].get('miou_ratio'))} | {format_cell(row['metrics'].get('fid'))} "
                         f"| {format_cell(row['metrics'].get('lpips'))} | {row['n']} |")
        lines.append("")
    from util.util import atomic_path
    with atomic_path(os.path.join(opt.out, "README.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines))
    return os.path.join(opt.out, "README.md")


def main(argv=None):
    opt = parse_args(argv)
    if opt.seeds < 1:
        sys.exit(f"error: --seeds {opt.seeds}: give at least 1")
    if opt.dataset_mode not in grid.PROCEDURAL and not opt.seg_model:
        sys.exit(f"error: --dataset_mode {opt.dataset_mode}: give the dataset's segmenter with --seg_model "
                 f"(the bundled U-Net is trained only for {' and '.join(grid.PROCEDURAL)})")
    if opt.seg_model and not os.path.isfile(opt.seg_model) and not opt.dry_run:
        sys.exit(f"error: --seg_model {opt.seg_model}: no such file")
    options_of, columns, skipped = variants(opt)
    for line in skipped:
        print(line)
    grid.run_grid(runs(opt, options_of), opt.out, protocol(opt), dry_run=opt.dry_run)
    if opt.dry_run:
        return None
    readme = write_reports(opt, columns)
    print(f"wrote {readme}")
    return readme


if __name__ == "__main__":
    main()
