"""Benchmark (not a test): speed and memory of whole models, as training runs them, in one markdown table.

For scgan+fpse, spade+multiscale, pix2pixhd+multiscale and ccfpse+fpse (CC-FPSE's own pairing), built by
models.create_model from the options train.py would parse for `--dataset_mode ade20k` (256x256) or `cityscapes`
(crop 512, aspect ratio 2: 256x512), `--no_vgg_loss` so no VGG weights are needed, no data: layouts of 12 random
Voronoi regions, each its own class, and random images. Measured: G and D parameters; G forward ms and G
forward+backward ms (train mode); one full training iteration ms (Pix2PixTrainer's G step then D step, as train.py
runs them); inference images/s (eval mode, no gradients); peak memory of a G forward+backward and of a training
iteration.

Each layout path of --layout_paths (models/networks/layout_lookup.py: 'lookup', the layout convolutions as table
lookups; 'conv', the convolution of the one-hot tensor) is timed in the same process, in turns (a round runs each
path once), so the ratio between them holds on a machine whose load comes and goes; every time is the median over
--repeats rounds after --warmup rounds. Each model and phase (generator, train) runs in a fresh process. Peak
memory on the CPU is the peak resident set size added by one G forward+backward or one training iteration (after a
first iteration, so the optimizers' states are held already), read from /proc/self/status; on CUDA it is
torch.cuda.max_memory_allocated. Each cell of a path other than the first gives its ratio to the first path's.

    python -m benchmarks.bench_models [--sizes ade20k cityscapes] [--batches 1 4] [--threads 2]
        [--layout_paths lookup conv] [--precision fp32|bf16|fp16] [--device cpu|cuda] [--models scgan spade]
        [--crop_size 64] [--out table.md]
"""
import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

MODELS = {"scgan": ("scgan", "fpse"), "spade": ("spade", "multiscale"), "pix2pixhd": ("pix2pixhd", "multiscale"),
          "ccfpse": ("ccfpse", "fpse")}
SIZES = {"ade20k": (256, 1.0), "cityscapes": (512, 2.0)}   # dataset mode: (crop_size, aspect_ratio)
PATHS = ("lookup", "conv")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
COLUMNS = [("G params (M)", "g_params", "{:.1f}"), ("D params (M)", "d_params", "{:.1f}"),
           ("G fwd ms", "g_forward_ms", "{:.0f}"), ("G fwd+bwd ms", "g_forward_backward_ms", "{:.0f}"),
           ("train iter ms", "train_iteration_ms", "{:.0f}"), ("inference img/s", "inference_images_per_s", "{:.2f}"),
           ("G fwd+bwd peak MiB", "g_peak_mib", "{:.0f}"), ("train peak MiB", "train_peak_mib", "{:.0f}")]
PER_PATH = {"g_forward_ms", "g_forward_backward_ms", "train_iteration_ms", "inference_images_per_s", "g_peak_mib",
            "train_peak_mib"}


# --------------------------------------------------------------------------------------------------------
# one model, in its own process

def option_argv(model, args, checkpoints_dir):
    netG, netD = MODELS[model]
    crop, aspect = (args.crop_size, SIZES[args.size][1]) if args.crop_size else SIZES[args.size]
    return ["--dataset_mode", args.size, "--dataroot", "unused", "--netG", netG, "--netD", netD,
            "--crop_size", str(crop), "--load_size", str(crop), "--aspect_ratio", str(aspect),
            "--batchSize", str(args.batch), "--no_vgg_loss",
            *(["--preprocess_mode", "fixed"] if aspect != 1 else []),  # crop modes are square
            "--gpu_ids", "0" if args.device == "cuda" else "-1", "--checkpoints_dir", checkpoints_dir,
            "--amp", {"fp32": "none", "bf16": "bf16", "fp16": "fp16"}[args.precision]]


def peak_memory_meter(device):
    """-> (start(), peak_mib()): peak memory added since start(); CUDA allocator, or the process's RSS."""
    if device.type == "cuda":
        def start():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start.base = torch.cuda.memory_allocated()

        def peak():
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - start.base) / 2 ** 20
        return start, peak

    def status_kib(field):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

    def start():
        with open("/proc/self/clear_refs", "w") as f:  # resets the peak RSS (VmHWM) to the current RSS
            f.write("5")
        start.base = status_kib("VmRSS")

    def peak():
        return (status_kib("VmHWM") - start.base) / 1024
    return start, peak


def timed_ms(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 1e3 * (time.perf_counter() - t0)


def median_ms(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    return statistics.median(timed_ms(fn, device) for _ in range(repeats))


def in_turns(fns, device, warmup, repeats):
    """fns: {key: function} -> {key: median ms}, each round running every function once, so that a load that
    comes and goes slows them alike."""
    times = {key: [] for key in fns}
    for round_ in range(warmup + repeats):
        for key, fn in fns.items():
            ms = timed_ms(fn, device)
            if round_ >= warmup:
                times[key].append(ms)
    return {key: statistics.median(t) for key, t in times.items()}


def layouts_and_images(opt, batch, device):
    """-> (label (B, 1, H, W) ids of 12 Voronoi regions per image, images (B, 3, H, W))."""
    from benchmarks.bench_inference import voronoi_ids
    from inference.synthesizer import model_size
    h, w = model_size(opt)
    classes = opt.label_nc + int(opt.contain_dontcare_label)
    label = torch.stack([torch.from_numpy(voronoi_ids((h, w), min(12, classes), classes, seed=b))
                         for b in range(batch)])[:, None]
    return label, torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1


def measure(model_name, args, phase):
    """Build one model and measure `phase` for every path of args.layout_paths: 'generator' (peak memory of a G
    forward+backward, then the G and inference times) or 'train' (training iterations: time and peak memory).
    Each phase runs in a fresh process: after training steps the same G forward+backward ran up to 1.5x slower
    on our CPU. -> {'g_params', 'd_params', path: {measure: value}}."""
    from models import create_model
    from models.networks.layout_lookup import set_layout_path
    from options.train_options import TrainOptions
    from trainers.pix2pix_trainer import Pix2PixTrainer

    device = torch.device(args.device)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(option_argv(model_name, args, tmp), save=False, verbose=False)
        # training runs through the trainer's own step: autocast, GradScaler, D frozen in the G step
        trainer = Pix2PixTrainer(opt) if phase == "train" else None
        model = trainer.model if trainer is not None else create_model(opt)
    netG, netD = model.netG, model.netD
    label, image = layouts_and_images(opt, args.batch, device)
    data = {"label": label, "instance": label, "image": image}
    dtype = PRECISIONS[args.precision]
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    start_meter, peak_mib = peak_memory_meter(device)

    def on(path, fn):
        def run():
            for net in (netG, netD):
                set_layout_path(net, path)
            return fn()
        return run

    def g_forward():
        seg, _ = model.preprocess_input(data)   # a Layout of the class ids, as training makes it
        with autocast():
            return netG(seg)

    def g_forward_backward():
        netG.zero_grad(set_to_none=True)
        g_forward().float().mean().backward()

    def inference():
        model.eval()
        with torch.no_grad():
            model(data, mode="inference")
        model.train()

    def train_iteration():
        trainer.run_generator_one_step(data)
        trainer.run_discriminator_one_step(data)

    result = {"g_params": sum(p.numel() for p in netG.parameters()) / 1e6,
              "d_params": sum(p.numel() for p in netD.parameters()) / 1e6}
    paths = {path: {} for path in args.layout_paths}
    first = args.layout_paths[0]
    # peak memory of the first path, first thing in this fresh process (the first training iteration allocates the
    # optimizers' states, as in real training); the other paths' peaks come from processes of their own
    start_meter()
    on(first, g_forward_backward if phase == "generator" else train_iteration)()
    paths[first]["g_peak_mib" if phase == "generator" else "train_peak_mib"] = peak_mib()
    if args.memory_only:
        return {**result, **paths}
    if phase == "generator":
        with torch.no_grad():
            forward = in_turns({path: on(path, g_forward) for path in paths}, device, args.warmup, args.repeats)
        both = in_turns({path: on(path, g_forward_backward) for path in paths}, device, args.warmup, args.repeats)
        images = in_turns({path: on(path, inference) for path in paths}, device, args.warmup, args.repeats)
        for path in paths:
            paths[path].update(g_forward_ms=forward[path], g_forward_backward_ms=both[path],
                               inference_images_per_s=1e3 * args.batch / images[path])
    else:
        iteration = in_turns({path: on(path, train_iteration) for path in paths}, device, args.warmup, args.repeats)
        for path in paths:
            paths[path]["train_iteration_ms"] = iteration[path]
    return {**result, **paths}


# --------------------------------------------------------------------------------------------------------
# the table

def run_in_subprocess(model, args, phase, paths, memory_only=False):
    """One model and phase in a fresh process: the peak memory of paths[0], and (unless memory_only) the times of
    every path of `paths`."""
    argv = [sys.executable, "-m", "benchmarks.bench_models", "--_child", model, "--_phase", phase,
            "--sizes", args.size, "--batches", str(args.batch), "--crop_size", str(args.crop_size),
            "--precision", args.precision, "--device", args.device, "--warmup", str(args.warmup),
            "--repeats", str(args.repeats), "--threads", str(args.threads), "--layout_paths", *paths,
            *(["--_memory_only"] if memory_only else [])]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{model} ({phase}) failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results, paths):
    """results: {(model, size, batch): measured} -> markdown: a row per path, each cell of a later path with its
    ratio to the first path's."""
    header = "| model | size | batch | layout | " + " | ".join(name for name, _, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 4)]
    for (model, size, batch), r in results.items():
        netG, netD = MODELS[model]
        h, w = r["size_hw"]
        for path in paths:
            cells = []
            for _, key, fmt in COLUMNS:
                if key not in PER_PATH:
                    cells.append(fmt.format(r[key]))
                    continue
                value, first = r[path][key], r[paths[0]][key]
                cell = fmt.format(value)
                if path != paths[0] and first:
                    cell += f" ({value / first:.2f}x)"
                cells.append(cell)
            lines.append(f"| {netG}+{netD} | {size} {h}x{w} | {batch} | {path} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=["ade20k"],
                        help="dataset modes whose settings and size are used: ade20k 256x256, cityscapes 256x512")
    parser.add_argument("--batches", nargs="+", type=int, default=[1])
    parser.add_argument("--crop_size", type=int, default=0,
                        help="width instead of the dataset's (the height follows its aspect ratio); for quick checks")
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                        help="fp32, or autocast to bf16 / fp16 (fp16 with a GradScaler)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--layout_paths", nargs="+", choices=PATHS, default=list(PATHS),
                        help="how the layout convolutions compute, each timed in turns with the others (the first "
                             "is the reference of the ratios)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", help="also write the table (with its header line) to this file")
    parser.add_argument("--_child", choices=tuple(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--_phase", choices=("generator", "train"), default="generator", help=argparse.SUPPRESS)
    parser.add_argument("--_memory_only", dest="memory_only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no GPU; use --device cpu")
    if args.precision == "fp16" and args.device == "cpu":
        raise SystemExit("--precision fp16 runs on --device cuda; on the CPU use bf16")
    if min(args.batches) < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 0:
        raise SystemExit("--batches and --repeats must be >= 1, --warmup and --threads >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._child:
        args.size, args.batch = args.sizes[0], args.batches[0]
        print(json.dumps(measure(args._child, args, args._phase)))
        return
    results = {}
    for size in args.sizes:
        for batch in args.batches:
            args.size, args.batch = size, batch
            crop, aspect = (args.crop_size, SIZES[size][1]) if args.crop_size else SIZES[size]
            for model in args.models:
                measured = {"size_hw": [round(crop / aspect), crop], **{path: {} for path in args.layout_paths}}
                for phase in ("generator", "train"):
                    timed = run_in_subprocess(model, args, phase, args.layout_paths)
                    measured.update(g_params=timed["g_params"], d_params=timed["d_params"])
                    for path in args.layout_paths:
                        measured[path].update(timed[path])
                    for path in args.layout_paths[1:]:   # the other paths' peak memory, each in a fresh process
                        measured[path].update(run_in_subprocess(model, args, phase, [path], memory_only=True)[path])
                results[(model, size, batch)] = measured
                print(f"  done: {model} {size} batch {batch}", file=sys.stderr, flush=True)
    header = (f"{args.precision}, {args.device} ({torch.get_num_threads()} threads), layouts of 12 random regions, "
              f"the layout paths timed in turns, median of {args.repeats} after {args.warmup} warm-up; (x) = ratio "
              f"to the {args.layout_paths[0]} row")
    text = "\n".join([header, "", table(results, args.layout_paths)])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
