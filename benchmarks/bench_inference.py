"""Benchmark (not a test): inference images/s of the generators, in the ways an application can run them, in one
markdown table.

For scgan, spade, pix2pixhd and ccfpse, each built at its preset for `--dataset_mode ade20k` (256x256) and
`--dataset_mode cityscapes` (crop 512, aspect ratio 2: 256x512) as test.py would parse the options, at each
--batches size, in each mode:

  eager     the generator as built: spectral norms unfolded (recomputed at every forward), eval mode, no grad
  folded    after inference.prepare_for_inference (what inference.Synthesizer runs): spectral norms folded
  compile   torch.compile (inductor) of the folded generator; its setup is the compile (the first call), with
            inductor's on-disk caches off so that it is a cold compile every time
  onnx      the folded generator exported by inference/export.py (ONNX, dynamic batch), run in ONNX Runtime
            (all graph optimizations, --threads intra-op threads); its setup is the export plus the session's
            creation. The lookup path exports the graph that takes class ids (layout_input 'ids'), the conv path
            the one that takes the one-hot layout
  bf16      the folded generator and its inputs in bfloat16, as Synthesizer(precision='bf16') runs it

and for each path of --layout_paths (models/networks/layout_lookup.py): 'lookup', the layers that read the layout
compute their convolutions as table lookups of the class ids; 'conv', they convolve the one-hot tensor. The layout
goes in as the Synthesizer gives it, a Layout of the class ids (its one-hot tensor made where a layer reads it).

Weights are random (as built, no checkpoint): the speed of a generator does not depend on its weights' values.
Layouts are --classes regions around random seeds (a Voronoi diagram), each region its own random class, per
image; --classes 0 draws a random class for every pixel instead (every class present, instance edges
everywhere), with instance edges as training makes them (no data needed). --use_vae presets (ccfpse) get a random
style code z, the same in every mode.

Every time is the median over --repeats forwards after --warmup forwards. Each (model, size, batch, mode) runs in
a fresh subprocess, so no mode's compiled kernels, thread pools or freed memory count for another's. Peak memory
is what the forwards add over the memory held once the mode is set up (weights, compiled code, the ONNX session):
on the CPU the peak resident set size read from /proc/self/status, on CUDA torch.cuda.max_memory_allocated (ONNX
Runtime's own CUDA memory is not seen there: that cell is left empty). With --interleave, the modes of one
(model, size, batch) are set up in one process on copies of one generator and timed in turns, one forward of
each mode a round, so that the load of other jobs on a shared machine slows them alike (no peak memory then).
Each row gives its images/s as a ratio to the eager row of its (model, size, batch, path), to the conv row of its
(model, size, batch, mode) and to scgan's row of its (size, batch, mode, path).

    python -m benchmarks.bench_inference [--generators scgan spade] [--sizes ade20k cityscapes] [--batches 1 8]
        [--modes eager folded compile onnx bf16] [--layout_paths lookup conv] [--repeats 3] [--warmup 1]
        [--threads 2] [--classes 12] [--interleave] [--device cpu|cuda] [--crop_size 64] [--ngf 16]
        [--out table.md]
"""
import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

from benchmarks.bench_models import median_ms, peak_memory_meter

MODELS = ("scgan", "spade", "pix2pixhd", "ccfpse")
SIZES = ("ade20k", "cityscapes")   # dataset modes whose options set the size and the presets
MODES = ("eager", "folded", "compile", "onnx", "bf16")
PATHS = ("lookup", "conv")
INTERLEAVED = "interleaved"   # the child's mode that times every mode of --modes in turns
COLUMNS = ("model", "size", "batch", "mode", "layout", "img/s", "vs eager", "vs conv", "vs scgan", "peak MiB",
           "setup s")  # vs conv, vs scgan: only when the conv path, scgan was measured


# --------------------------------------------------------------------------------------------------------
# one (model, size, batch, mode), in its own process

def build_options(model, size, args, checkpoints_dir):
    """The options test.py would parse for this generator and dataset mode (no experiment, no data)."""
    from options.test_options import TestOptions

    class BenchOptions(TestOptions):
        requires_experiment = False   # nothing is trained: the generator is built with random weights

    argv = ["--dataset_mode", size, "--netG", model, "--dataroot", "unused", "--checkpoints_dir", checkpoints_dir,
            "--name", "bench", "--batchSize", str(args.batch), "--gpu_ids", "0" if args.device == "cuda" else "-1"]
    if args.crop_size:
        argv += ["--crop_size", str(args.crop_size)]
    if args.ngf:
        argv += ["--ngf", str(args.ngf)]
    with contextlib.redirect_stdout(io.StringIO()):
        return BenchOptions().parse(argv, save=False, verbose=False)


def voronoi_ids(size, classes, label_nc, seed=0):
    """(H, W) int64 class ids: `classes` regions around random seeds, each a distinct random class of label_nc."""
    rng = np.random.default_rng(seed)
    h, w = size
    seeds = rng.uniform(0, (h, w), size=(classes, 2))
    chosen = rng.choice(label_nc, size=classes, replace=False)
    rows, cols = np.mgrid[:h, :w]
    nearest = ((rows[None] - seeds[:, 0, None, None]) ** 2 + (cols[None] - seeds[:, 1, None, None]) ** 2).argmin(0)
    return chosen[nearest].astype(np.int64)


def random_inputs(opt, batch, device, classes=12):
    """-> (ids (B, 1, H, W), z (B, z_dim) or None) on `device`: `classes` Voronoi regions per image (a random
    class per pixel with classes 0)."""
    from inference.synthesizer import model_size
    g = torch.Generator().manual_seed(0)
    h, w = model_size(opt)
    if classes:
        ids = torch.from_numpy(np.stack([voronoi_ids((h, w), min(classes, opt.label_nc), opt.label_nc, seed=b)
                                         for b in range(batch)]))[:, None]
    else:
        ids = torch.randint(0, opt.label_nc + int(opt.contain_dontcare_label), (batch, 1, h, w), generator=g)
    z = torch.randn(batch, opt.z_dim, generator=g) if opt.use_vae else None
    return ids.to(device), (z.to(device) if z is not None else None)


def layout_of(opt, ids, dtype=torch.float32):
    """The Synthesizer's input for these ids: a Layout (instance edges of the label map itself)."""
    from models.pix2pix_model import layout_of_labels
    return layout_of_labels(ids, ids, opt.label_nc, opt.contain_dontcare_label, opt.no_instance, dtype)


def onnx_runner(netG, opt, ids, z, args, folder, layout_input):
    """Export netG with inference/export.py and open it in ONNX Runtime -> a function running one batch."""
    import onnxruntime as ort
    from inference.export import export_onnx
    path = os.path.join(folder, "netG.onnx")
    with contextlib.redirect_stdout(io.StringIO()):   # the exporter reports each of its steps
        export_onnx(netG, opt, path, layout_input=layout_input)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL   # the default, said here
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    providers = ["CUDAExecutionProvider"] if args.device == "cuda" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(path, options, providers=providers)
    if layout_input == "ids":
        feeds = {"ids": ids[:, 0].cpu().numpy(), **({} if opt.no_instance else {"instance": ids[:, 0].cpu().numpy()})}
    else:
        feeds = {"layout": layout_of(opt, ids).tensor().cpu().numpy()}
    if z is not None:
        feeds["z"] = z.cpu().numpy()
    return lambda: session.run(None, feeds)


def set_up(mode, path, netG, opt, ids, z, args, folder):
    """netG (eval mode, as built) made ready for `mode` and layout `path` -> (a function running one batch,
    setup seconds)."""
    from inference import fold_spectral_norms, prepare_for_inference
    from models.networks.layout_lookup import set_layout_path
    device = ids.device
    t0 = time.perf_counter()
    if mode == "eager":
        set_layout_path(netG, path)
    elif mode in ("folded", "bf16"):
        prepare_for_inference(netG, path)
    else:
        fold_spectral_norms(netG)
        set_layout_path(netG, path)
    dtype = torch.float32
    if mode == "bf16":   # weights and inputs cast, as the Synthesizer does (9% faster than autocast on this CPU)
        netG.to(torch.bfloat16)
        dtype = torch.bfloat16
        z = z.to(torch.bfloat16) if z is not None else None

    # the compiled module, or the generator itself
    module = torch.compile(netG) if mode == "compile" else netG

    def run():
        with torch.no_grad():   # the layout made per call, as the Synthesizer makes it per batch
            return module(layout_of(opt, ids, dtype), z=z)

    if mode == "compile":
        run()   # the compilation
    elif mode == "onnx":
        run = onnx_runner(netG, opt, ids, z, args, folder, "ids" if path == "lookup" else "one_hot")
    if device.type == "cuda":
        torch.cuda.synchronize()
    return run, time.perf_counter() - t0


def built_generator(model, size, args, tmp, device):
    """The generator as test.py's options build it for (model, size), in eval mode, and its random inputs
    -> (opt, netG, ids, z)."""
    from models import networks

    torch.manual_seed(0)
    opt = build_options(model, size, args, tmp)
    netG = networks.define_G(opt, verbose=False).to(device).eval()
    ids, z = random_inputs(opt, args.batch, device, args.classes)
    return opt, netG, ids, z


def measure(model, size, args):
    """Build the generator, set up args.mode on args.path, run it -> {'images_per_s', 'peak_mib', 'setup_s',
    'size_hw'}."""
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        opt, netG, ids, z = built_generator(model, size, args, tmp, device)
        run, setup_s = set_up(args.mode, args.path, netG, opt, ids, z, args, tmp)
        start_meter, peak_mib = peak_memory_meter(device)
        start_meter()
        ms = median_ms(run, device, args.warmup, args.repeats)
        peak = peak_mib() if not (args.mode == "onnx" and device.type == "cuda") else None
    return {"images_per_s": 1e3 * args.batch / ms, "peak_mib": peak,
            "setup_s": setup_s if args.mode != "eager" else None, "size_hw": [ids.shape[2], ids.shape[3]]}


def measure_interleaved(model, size, args):
    """Every (mode, path) of args.modes and args.layout_paths set up in this one process on copies of one
    generator, then timed in turns (each round runs every one once), so that a load that comes and goes on a
    shared machine slows them alike -> {"mode path": result dict as `measure`'s, without peak memory}."""
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        opt, built, ids, z = built_generator(model, size, args, tmp, device)
        runs = {}
        for mode in args.modes:
            for path in args.layout_paths:
                folder = os.path.join(tmp, f"{mode}_{path}")
                os.makedirs(folder)
                runs[f"{mode} {path}"] = set_up(mode, path, copy.deepcopy(built), opt, ids, z, args, folder)
        times = {key: [] for key in runs}
        for _ in range(args.warmup + args.repeats):
            for key, (run, _) in runs.items():
                times[key].append(median_ms(run, device, 0, 1))
    return {key: {"images_per_s": 1e3 * args.batch / statistics.median(times[key][args.warmup:]),
                  "peak_mib": None, "setup_s": setup_s if not key.startswith("eager") else None,
                  "size_hw": [ids.shape[2], ids.shape[3]]} for key, (_, setup_s) in runs.items()}


# --------------------------------------------------------------------------------------------------------
# the table

def run_in_subprocess(model, size, batch, mode, path, args):
    """-> (result dict, None) or (None, why it was skipped)."""
    argv = [sys.executable, "-m", "benchmarks.bench_inference", "--_child", model, size, str(batch), mode, path,
            "--layout_paths", *args.layout_paths,
            "--device", args.device, "--warmup", str(args.warmup), "--repeats", str(args.repeats),
            "--threads", str(args.threads), "--crop_size", str(args.crop_size), "--ngf", str(args.ngf),
            "--classes", str(args.classes),
            "--modes", *args.modes]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # inductor's on-disk caches would turn a second run's compile into a cache read: time a cold compile
    compiles = mode == "compile" or (mode == INTERLEAVED and "compile" in args.modes)
    env = dict(os.environ, TORCHINDUCTOR_FORCE_DISABLE_CACHES="1") if compiles else None
    done = subprocess.run(argv, cwd=root, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        if mode == "compile":   # inductor needs a C++ compiler and may not support every operator (with
            # --interleave a failed compile stops the run below)
            return None, f"torch.compile failed: {last}"
        sys.exit(f"{model} {size} batch {batch} {mode} {path} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), None


def ratio(value, reference):
    return f"{value / reference:.2f}x" if reference else "–"


def significant(value):
    """Three significant digits, trailing zeros kept: 0.559, 2.00, 12.3, 123; whole numbers from 1000 on."""
    return f"{value:.0f}" if value >= 1000 else f"{value:#.3g}".rstrip(".")


def table(results):
    """results: {(model, size, batch, mode, path): result dict} -> markdown, one row per entry, in insertion
    order."""
    with_scgan = any(key[0] == "scgan" for key in results)
    with_conv = any(key[4] == "conv" for key in results) and any(key[4] != "conv" for key in results)
    columns = [c for c in COLUMNS if (with_scgan or c != "vs scgan") and (with_conv or c != "vs conv")]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for (model, size, batch, mode, path), r in results.items():
        h, w = r["size_hw"]
        eager = results.get((model, size, batch, "eager", path), {}).get("images_per_s")
        conv = results.get((model, size, batch, mode, "conv"), {}).get("images_per_s")
        scgan = results.get(("scgan", size, batch, mode, path), {}).get("images_per_s")
        cells = {"model": model, "size": f"{size} {h}x{w}", "batch": str(batch), "mode": mode, "layout": path,
                 "img/s": significant(r["images_per_s"]), "vs eager": ratio(r["images_per_s"], eager),
                 "vs conv": ratio(r["images_per_s"], conv), "vs scgan": ratio(r["images_per_s"], scgan),
                 "peak MiB": significant(r["peak_mib"]) if r["peak_mib"] is not None else "–",
                 "setup s": significant(r["setup_s"]) if r["setup_s"] is not None else "–"}
        lines.append("| " + " | ".join(cells[c] for c in columns) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", "--models", dest="models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES),
                        help="dataset modes whose presets and size are used: ade20k 256x256, cityscapes 256x512")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--layout_paths", nargs="+", choices=PATHS, default=list(PATHS),
                        help="how the layout convolutions compute: table lookups of the class ids, or convolutions "
                             "of the one-hot tensor")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="CPU threads of torch and of ONNX Runtime (default: torch's, one per physical core)")
    parser.add_argument("--classes", type=int, default=12,
                        help="regions (each its own class) of every random layout; 0: a random class per pixel")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--crop_size", type=int, default=0,
                        help="width instead of the dataset's (the height follows its aspect ratio); for quick checks")
    parser.add_argument("--ngf", type=int, default=0,
                        help="the generators' base width instead of their presets' (0); for quick checks, since "
                             "speed and memory depend on it")
    parser.add_argument("--interleave", action="store_true",
                        help="time the modes of one (generator, size, batch) in one process, in turns, instead of "
                             "each in a fresh process: ratios that hold on a shared machine; no peak memory")
    parser.add_argument("--out", help="also write the table (with its header line) to this file")
    parser.add_argument("--_child", nargs=5, metavar=("MODEL", "SIZE", "BATCH", "MODE", "PATH"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this PyTorch sees no GPU; use --device cpu")
    if min(args.batches) < 1 or args.repeats < 1 or args.warmup < 0 or args.threads < 1 or args.classes < 0 \
            or args.ngf < 0:
        raise SystemExit("--batches and --repeats must be >= 1, --warmup, --classes and --ngf >= 0, --threads >= 1")
    torch.set_num_threads(args.threads)
    if args._child:
        model, size, batch, args.mode, args.path = args._child
        args.batch = int(batch)
        measured = measure_interleaved if args.mode == INTERLEAVED else measure
        print(json.dumps(measured(model, size, args)))
        return

    notes = []
    if "onnx" in args.modes:
        try:
            import onnxruntime
            import onnxscript  # noqa: F401  (torch.onnx.export(dynamo=True) needs it)
            if args.device == "cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                raise ImportError("this ONNX Runtime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        except ImportError as e:
            args.modes = [m for m in args.modes if m != "onnx"]
            notes.append(f"onnx not measured: {e} (pip install -r requirements-export.txt)")
    results = {}
    for model in args.models:
        for size in args.sizes:
            for batch in args.batches:
                if args.interleave:
                    result, _ = run_in_subprocess(model, size, batch, INTERLEAVED, "-", args)
                    results.update(((model, size, batch, mode, path), result[f"{mode} {path}"])
                                   for mode in args.modes for path in args.layout_paths)
                    print(f"  done: {model} {size} batch {batch}", file=sys.stderr, flush=True)
                    continue
                for mode in args.modes:
                    for path in args.layout_paths:
                        result, skipped = run_in_subprocess(model, size, batch, mode, path, args)
                        if skipped:
                            notes.append(f"{model} {size} batch {batch} compile ({path}) not measured: {skipped}")
                        else:
                            results[(model, size, batch, mode, path)] = result
                        print(f"  done: {model} {size} batch {batch} {mode} {path}", file=sys.stderr, flush=True)
    layouts = f"{args.classes}-class layouts" if args.classes else "layouts of a random class per pixel"
    timing = "modes timed in turns in one process" if args.interleave else "each mode in its own process"
    width = f" at ngf {args.ngf}" if args.ngf else ""
    header = (f"{args.device} ({args.threads} threads), random weights{width}, {layouts}, {timing}, median of "
              f"{args.repeats} after {args.warmup} warm-up; vs eager: images/s over the eager row's of the same "
              f"layout path (vs conv: over the conv row's of the same mode; vs scgan: over scgan's row of the same "
              f"size, batch, mode and path); peak MiB: memory added by the forwards; setup s: folding, compiling "
              f"(the first call) or exporting and opening the ONNX session")
    publish("\n".join([header, "", table(results), *([""] + notes if notes else [])]), args.out)


def publish(text, out=None):
    """Print a benchmark's table, and write it to `out` when given."""
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
