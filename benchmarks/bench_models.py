"""Benchmark (not a test): speed and memory of whole models, as training runs them, in one markdown table.

For scgan+fpse, spade+multiscale, pix2pixhd+multiscale and ccfpse+fpse (CC-FPSE's own pairing), built by
models.create_model from the options train.py would parse (`--dataset_mode ade20k` settings, `--no_vgg_loss` so no
VGG weights are needed, no data: random layouts and images): G and D parameters; G forward ms and G
forward+backward ms (train mode, on the one-hot layout); one full training iteration ms (Pix2PixTrainer's G step
then D step, as train.py runs them); inference images/s (eval mode, no gradients); peak memory of G
forward+backward and of a training iteration. Every time is the median over --repeats runs after --warmup runs.
Each model is measured in a fresh subprocess (peak memory on the CPU is the peak resident set size added by the
phase, read from /proc/self/status, so one model's or phase's allocations never count for another's; on CUDA it is
torch.cuda.max_memory_allocated). Each cell also gives the value's ratio to scgan's.

    python -m benchmarks.bench_models [--crop_size 256] [--aspect_ratio 1] [--batch 1]
                                      [--precision fp32|bf16|fp16] [--device cpu|cuda] [--models scgan spade]
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
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
COLUMNS = [("G params (M)", "g_params", "{:.1f}"), ("D params (M)", "d_params", "{:.1f}"),
           ("G fwd ms", "g_forward_ms", "{:.0f}"), ("G fwd+bwd ms", "g_forward_backward_ms", "{:.0f}"),
           ("train iter ms", "train_iteration_ms", "{:.0f}"), ("inference img/s", "inference_images_per_s", "{:.2f}"),
           ("G fwd+bwd peak MiB", "g_peak_mib", "{:.0f}"), ("train peak MiB", "train_peak_mib", "{:.0f}")]


# --------------------------------------------------------------------------------------------------------
# one model, in its own process

def option_argv(model, args, checkpoints_dir):
    netG, netD = MODELS[model]
    return ["--dataset_mode", "ade20k", "--dataroot", "unused", "--netG", netG, "--netD", netD,
            "--crop_size", str(args.crop_size), "--load_size", str(args.crop_size),
            "--aspect_ratio", str(args.aspect_ratio), "--batchSize", str(args.batch), "--no_vgg_loss",
            *(["--preprocess_mode", "fixed"] if args.aspect_ratio != 1 else []),  # crop modes are square
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


def median_ms(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def measure(model_name, args, phase):
    """Build one model and measure `phase`: 'generator' (peak memory of the first G forward+backward, then the
    G and inference times) or 'train' (training iterations: time and peak memory). Each phase runs in a fresh
    process: after training steps the same G forward+backward ran up to 1.5x slower on our CPU."""
    from models import create_model
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
    h, w = round(args.crop_size / args.aspect_ratio), args.crop_size
    label = torch.randint(0, opt.label_nc + int(opt.contain_dontcare_label), (args.batch, 1, h, w))
    data = {"label": label, "instance": torch.zeros(1), "image": torch.rand(args.batch, 3, h, w) * 2 - 1}
    seg, _ = model.preprocess_input(data)
    dtype = PRECISIONS[args.precision]
    autocast = (lambda: torch.autocast(device.type, dtype=dtype)) if dtype else contextlib.nullcontext
    start_meter, peak_mib = peak_memory_meter(device)

    def g_forward():
        with autocast():
            return netG(seg)

    def g_forward_backward():
        netG.zero_grad(set_to_none=True)
        g_forward().float().mean().backward()

    result = {"g_params": sum(p.numel() for p in netG.parameters()) / 1e6,
              "d_params": sum(p.numel() for p in netD.parameters()) / 1e6}
    if phase == "generator":
        start_meter()
        g_forward_backward()
        result["g_peak_mib"] = peak_mib()
        with torch.no_grad():
            result["g_forward_ms"] = median_ms(g_forward, device, args.warmup, args.repeats)
        result["g_forward_backward_ms"] = median_ms(g_forward_backward, device, args.warmup, args.repeats)
        model.eval()
        with torch.no_grad():
            ms = median_ms(lambda: model(data, mode="inference"), device, args.warmup, args.repeats)
        result["inference_images_per_s"] = 1e3 * args.batch / ms
        return result

    def train_iteration():
        trainer.run_generator_one_step(data)
        trainer.run_discriminator_one_step(data)

    start_meter()  # the peak covers the optimizer states' allocation, as in real training
    result["train_iteration_ms"] = median_ms(train_iteration, device, args.warmup, args.repeats)
    result["train_peak_mib"] = peak_mib()
    return result


# --------------------------------------------------------------------------------------------------------
# the table

def run_in_subprocess(model, args, phase):
    argv = [sys.executable, "-m", "benchmarks.bench_models", "--_child", model, "--_phase", phase,
            "--crop_size", str(args.crop_size), "--aspect_ratio", str(args.aspect_ratio), "--batch", str(args.batch),
            "--precision", args.precision, "--device", args.device, "--warmup", str(args.warmup),
            "--repeats", str(args.repeats), "--threads", str(args.threads)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{model} ({phase}) failed:\n{done.stderr[-2000:]}")
    out = done.stdout
    return json.loads(out.strip().splitlines()[-1])


def table(results, reference="scgan"):
    header = "| model | " + " | ".join(name for name, _, _ in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for model, r in results.items():
        cells = []
        for _, key, fmt in COLUMNS:
            cell = fmt.format(r[key])
            if model != reference and reference in results and results[reference][key]:
                cell += f" ({r[key] / results[reference][key]:.2f}x)"
            cells.append(cell)
        netG, netD = MODELS[model]
        lines.append(f"| {netG}+{netD} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crop_size", type=int, default=256, help="width of the images")
    parser.add_argument("--aspect_ratio", type=float, default=1.0, help="width / height (2 for 256x512)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                        help="fp32, or autocast to bf16 / fp16 (fp16 with a GradScaler)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--_child", choices=tuple(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--_phase", choices=("generator", "train"), default="generator", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no GPU; use --device cpu")
    if args.precision == "fp16" and args.device == "cpu":
        raise SystemExit("--precision fp16 runs on --device cuda; on the CPU use bf16")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args._child:
        print(json.dumps(measure(args._child, args, args._phase)))
        return
    results = {}
    for model in args.models:
        results[model] = {**run_in_subprocess(model, args, "generator"), **run_in_subprocess(model, args, "train")}
    h = round(args.crop_size / args.aspect_ratio)
    print(f"ade20k settings, {h}x{args.crop_size}, batch {args.batch}, {args.precision}, {args.device} "
          f"({torch.get_num_threads()} threads), median of {args.repeats} after {args.warmup} warm-up; "
          f"(x) = ratio to scgan\n")
    print(table(results))


if __name__ == "__main__":
    main()
