"""The generators side by side: SC-GAN, SPADE, pix2pixHD, CC-FPSE and OASIS, trained at one budget on each dataset,
with replicate seeds, scored with one protocol, in one report and one figure.

    python -m benchmarks.compare_generators [--datasets landscapes,synthetic] [--generators KEY,KEY]
        [--seeds 3[,ccfpse=2]] [--epochs N] [--batch N] [--lr LR] [--ema_decay D] [--eval_images 200]
        [--dataset_args MODE='...'] [--seg_model MODE=FILE] [--seg_args MODE='...'] [--train_args '...']
        [--eval_args '...']
        [--gpu_ids -1] [--out compare] [--dry_run | --cost]

Generators (CONFIGS), each with the discriminator of its paper:
  scgan      --netG scgan --netD fpse
  spade      --netG spade --netD multiscale
  pix2pixhd  --netG pix2pixhd --netD multiscale
  ccfpse     --netG ccfpse --netD fpse
  oasis      --netG spade --netD oasis --oasis_noise_nc 64 --no_vgg_loss --beta2 0.999 (OASIS: SPADE's generator
             with 3-D noise, its segmenting discriminator with LabelMix, no VGG loss, Adam beta2 0.999)
The budget is the same for every run of a dataset and passed to train.py explicitly, so no generator preset can
change it: --batchSize, --niter + --niter_decay (half the epochs at the full learning rate, half decaying linearly to
0), --lr (TTUR: G at lr/2, D at 2 lr) and --ema_decay; by default the dataset's own (synthetic: batch 4, 5 + 5 epochs
of 200 images = 2,000 images seen, lr 3e-4, EMA 0.995). Each network keeps its architecture preset for the dataset.

Each run is `train.py --dataset_mode D --seed S` with its generator's and the budget's options, then
`evaluate.py --metrics fid,lpips,miou --seed 0 --how_many N`: every run of a dataset is measured on the same first
N test layouts (FID at N images) with the dataset's bundled U-Net segmenter (python -m tools.train_segmenter,
trained once into OUT/DATASET_seg.pt for --seg_iterations steps, with --seg_args MODE='...' for one dataset;
--seg_model MODE=FILE gives another). benchmarks/grid.py runs the grid:
a run whose metrics.json exists is skipped, a trained one only evaluated, an interrupted one resumed; the CPU
seconds of every command are added to OUT/timings.json.

Reports (tools.compare, evaluation/report.py): OUT/DATASET/index.html and report.md per dataset (mean ± sample std
over the seeds, n), and OUT/index.html + OUT/README.md with every dataset's table and one figure of quality
(miou_ratio) against cost (training and inference images/s), OUT/images/quality_vs_cost.png.

--cost measures the cost columns, one generator at a time, each in a fresh process, on the machine it runs on
(run it with nothing else running): parameters, training images/s and CPU seconds per image (the trainer's own
steps on the dataset's batches, with the runs' options), inference images/s (the Synthesizer, as evaluate.py runs
it), peak memory of training, and once per dataset the CPU seconds of one evaluation. It writes OUT/cost.json, which
then replaces the costs measured during the runs (on a shared machine) in the reports.

--dry_run lists the runs and estimates the CPU-hours left: per generator and dataset from its finished runs
(timings.json), else from cost.json (training CPU per image x images seen + the evaluation).
"""
import argparse
import contextlib
import dataclasses
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass

from benchmarks import grid

# key -> train.py options of the generator and the discriminator of its paper
CONFIGS = OrderedDict([
    ("scgan", ("--netG", "scgan", "--netD", "fpse")),
    ("spade", ("--netG", "spade", "--netD", "multiscale")),
    ("pix2pixhd", ("--netG", "pix2pixhd", "--netD", "multiscale")),
    ("ccfpse", ("--netG", "ccfpse", "--netD", "fpse")),
    ("oasis", ("--netG", "spade", "--netD", "oasis", "--oasis_noise_nc", "64", "--no_vgg_loss", "--beta2", "0.999")),
])
DATASETS = ("landscapes", "synthetic")


# ------------------------------------------------------------------------------------------------ options
def parse_seeds(text):
    """'3' or '3,ccfpse=2' -> (default count, {generator: count})."""
    default, per = None, {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.rpartition("=")
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1 or (sep and key not in CONFIGS) or (not sep and default is not None):
            raise argparse.ArgumentTypeError(
                f"{text}: expected N[,GENERATOR=N...] with counts of at least 1 and generators among "
                f"{', '.join(CONFIGS)} (e.g. 3,ccfpse=2)")
        if sep:
            per[key] = count
        else:
            default = count
    if default is None:
        raise argparse.ArgumentTypeError(f"{text}: give the count for every generator first (e.g. 3,ccfpse=2)")
    return default, per


def parse_names(choices):
    def parse(text):
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if not names or unknown:
            raise argparse.ArgumentTypeError(f"{text}: choose from {','.join(choices)}")
        return names
    return parse


def parse_per_dataset(text):
    """'MODE=VALUE' -> (mode, value)."""
    mode, sep, value = text.partition("=")
    if not sep or not mode:
        raise argparse.ArgumentTypeError(f"{text}: expected DATASET=VALUE, e.g. synthetic=...")
    return mode, value


class OneLineParser(argparse.ArgumentParser):
    """An option error is one line saying where --help is, not a usage block of every option."""

    def error(self, message):
        sys.exit(f"error: {message} (python -m benchmarks.compare_generators --help lists the options)")


def parse_args(argv=None):
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help="dataset modes, comma-separated (each must be registered: python train.py --help)")
    parser.add_argument("--generators", type=parse_names(tuple(CONFIGS)), default=list(CONFIGS),
                        help=f"which of {','.join(CONFIGS)}")
    parser.add_argument("--seeds", type=parse_seeds, default=(3, {}),
                        help="runs per generator and dataset, seeds 0..N-1; GENERATOR=N gives one generator its "
                             "own count, e.g. 3,ccfpse=2")
    parser.add_argument("--epochs", type=int, default=None,
                        help="total epochs, half at the full learning rate, half decaying (default: the dataset's)")
    parser.add_argument("--batch", type=int, default=None, help="--batchSize of every run (default: the dataset's)")
    parser.add_argument("--lr", type=float, default=None, help="--lr of every run (default: the dataset's)")
    parser.add_argument("--ema_decay", type=float, default=None,
                        help="--ema_decay of every run, OASIS's included (default: the dataset's)")
    parser.add_argument("--eval_images", type=int, default=200, help="test images per evaluation (FID's count)")
    parser.add_argument("--seg_iterations", type=int, default=400, help="steps of the bundled segmenters")
    parser.add_argument("--seg_model", type=parse_per_dataset, action="append", default=[],
                        metavar="DATASET=FILE", help="the segmenter of a dataset, instead of training the U-Net")
    parser.add_argument("--seg_args", type=parse_per_dataset, action="append", default=[], metavar="DATASET='...'",
                        help="more tools.train_segmenter options for one dataset's U-Net, e.g. "
                             "landscapes='--iterations 800 --seg_width 32'")
    parser.add_argument("--dataset_args", type=parse_per_dataset, action="append", default=[],
                        metavar="DATASET='...'",
                        help="more options of one dataset for all its commands, e.g. synthetic='--num_synthetic 400'")
    parser.add_argument("--train_args", default="", help="more train.py options for every run, quoted as one")
    parser.add_argument("--eval_args", default="", help="more evaluate.py options for every run, quoted as one")
    parser.add_argument("--gpu_ids", default="-1", help="for train.py and evaluate.py (-1: the CPU)")
    parser.add_argument("--out", default="compare", help="folder for checkpoints/, results/, the reports")
    parser.add_argument("--prefix", default="compare", help="experiment names: PREFIX_DATASET_GENERATOR_seedS")
    parser.add_argument("--dry_run", action="store_true", help="list the runs and the estimated cost, run nothing")
    parser.add_argument("--cost", action="store_true",
                        help="measure the cost columns (one generator at a time) into OUT/cost.json, then rewrite "
                             "the reports; run it with nothing else on the machine")
    parser.add_argument("--cost_warmup", type=int, default=3, help="--cost: steps before timing")
    parser.add_argument("--cost_iterations", type=int, default=10, help="--cost: steps per timed window")
    parser.add_argument("--cost_windows", type=int, default=3, help="--cost: timed windows (the error bars)")
    parser.add_argument("--_cost_child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def check_args(opt):
    """One line for each impossible request, before anything is built or run."""
    import data
    for name in ("epochs", "batch", "eval_images", "seg_iterations", "cost_warmup", "cost_iterations",
                 "cost_windows"):
        value = getattr(opt, name)
        if value is not None and value < (0 if name == "cost_warmup" else 1):
            sys.exit(f"error: --{name} {value}: give at least {0 if name == 'cost_warmup' else 1}")
    if opt.cost and opt.dry_run:
        sys.exit("error: --cost and --dry_run: give one (--cost measures, --dry_run only lists)")
    modes = [m.strip() for m in opt.datasets.split(",") if m.strip()]
    unknown = [m for m in modes if m not in data.DATASETS]
    if not modes or unknown:
        sys.exit(f"error: --datasets {opt.datasets}: {', '.join(unknown) or 'none given'} is not a registered "
                 f"dataset mode; registered: {', '.join(data.DATASETS.names())}")
    for option, pairs in (("--seg_model", opt.seg_model), ("--seg_args", opt.seg_args),
                          ("--dataset_args", opt.dataset_args)):
        for mode, _ in pairs:
            if mode not in modes:
                sys.exit(f"error: {option} {mode}=...: {mode} is not among --datasets {','.join(modes)}")
    given = dict(opt.seg_model)
    for mode in modes:
        if mode not in grid.PROCEDURAL and mode not in given:
            sys.exit(f"error: --datasets {mode}: give its segmenter with --seg_model {mode}=FILE (the bundled "
                     f"U-Net is trained only for {' and '.join(grid.PROCEDURAL)})")
        if mode in given and not os.path.isfile(given[mode]) and not opt.dry_run:
            sys.exit(f"error: --seg_model {mode}={given[mode]}: no such file")
    return modes


# ------------------------------------------------------------------------------------------------ the budget
@dataclass(frozen=True)
class Budget:
    """What every run of a dataset trains with, passed to train.py explicitly."""
    batch: int
    niter: int
    niter_decay: int
    lr: float
    ema_decay: float
    images_per_epoch: int   # the training set less the partial batch train.py drops (None until counted)

    def options(self):
        return ("--batchSize", str(self.batch), "--niter", str(self.niter), "--niter_decay", str(self.niter_decay),
                "--lr", str(self.lr), "--ema_decay", str(self.ema_decay))

    @property
    def images_seen(self):
        return (self.niter + self.niter_decay) * self.images_per_epoch

    def describe(self):
        def epochs(n):
            return f"{n} epoch{'' if n == 1 else 's'}"
        schedule = f"lr {self.lr:g} for {epochs(self.niter)}"
        if self.niter_decay:
            schedule += f", then linearly to 0 over {epochs(self.niter_decay)}"
        ema = f"EMA generator {self.ema_decay}" if self.ema_decay else "no EMA generator"
        return (f"{self.images_seen:,} images seen per run ({epochs(self.niter + self.niter_decay)} of "
                f"{self.images_per_epoch:,}), batch {self.batch}, {schedule} (TTUR: G {self.lr / 2:g}, D "
                f"{self.lr * 2:g}), {ema}")


def dataset_defaults(mode):
    """The dataset's own training defaults (its hook's over train.py's): batchSize, niter, niter_decay, lr,
    ema_decay."""
    import data
    from options.train_options import TrainOptions
    parser = argparse.ArgumentParser(add_help=False)
    TrainOptions().initialize(parser)
    data.DATASETS.get(mode).modify_commandline_options(parser, True)
    return {k: parser.get_default(k) for k in ("batchSize", "niter", "niter_decay", "lr", "ema_decay")}


def train_options(argv):
    """train.py's options for `argv`, parsed as train.py parses them, writing nothing; a refusal -> one line."""
    from options.train_options import TrainOptions
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return TrainOptions().parse([*argv, "--name", "check", "--checkpoints_dir", tmp], save=False,
                                        verbose=False)
        except SystemExit as e:
            lines = [line for line in (str(e.code or "") + "\n" + err.getvalue()).splitlines() if line.strip()]
            # argparse's last line is "PROG: error: MESSAGE"; the program's name would be ours, not train.py's
            raise ValueError(lines[-1].split("error: ", 1)[-1] if lines else "refused") from None


@dataclass(frozen=True)
class Plan:
    datasets: OrderedDict   # mode -> grid.Dataset
    budgets: OrderedDict    # mode -> Budget
    runs: list              # grid.Run, by dataset, generator, seed
    configs: OrderedDict    # run name -> generator key


def experiment_name(opt, mode, key, seed):
    return f"{opt.prefix}_{mode}_{key}_seed{seed}"


def plan(opt, modes):
    """Every run of the grid, each configuration checked by train.py's own option parsing before anything runs."""
    import data
    dataset_args, seg_models, seg_args = dict(opt.dataset_args), dict(opt.seg_model), dict(opt.seg_args)
    datasets, budgets, runs, configs = OrderedDict(), OrderedDict(), [], OrderedDict()
    train_args = shlex.split(opt.train_args)
    default, per = opt.seeds
    for mode in modes:
        arguments = tuple(shlex.split(dataset_args.get(mode, "")))
        datasets[mode] = grid.Dataset(mode, arguments, seg_models.get(mode) or grid.bundled_segmenter(opt.out, mode),
                                      train_segmenter=mode not in seg_models,
                                      seg_arguments=tuple(shlex.split(seg_args.get(mode, ""))))
        own = dataset_defaults(mode)
        epochs = opt.epochs
        niter, niter_decay = ((epochs + 1) // 2, epochs // 2) if epochs is not None else (own["niter"],
                                                                                          own["niter_decay"])
        budget = Budget(batch=opt.batch or own["batchSize"], niter=niter, niter_decay=niter_decay,
                        lr=opt.lr or own["lr"], ema_decay=own["ema_decay"] if opt.ema_decay is None else opt.ema_decay,
                        images_per_epoch=None)
        size = None
        for key in opt.generators:
            options = (*CONFIGS[key], *budget.options(), *train_args)
            try:
                checked = train_options(["--dataset_mode", mode, "--gpu_ids", "-1", *arguments, *options])
            except ValueError as e:
                sys.exit(f"error: {mode} {key}: train.py refuses its options ({' '.join(options)}): {e}")
            if size is None:
                with contextlib.redirect_stdout(io.StringIO()):
                    size = len(data.create_dataset(checked))
            for seed in range(per.get(key, default)):
                run = grid.Run(experiment_name(opt, mode, key, seed), datasets[mode], seed, options)
                runs.append(run)
                configs[run.name] = key
        budgets[mode] = dataclasses.replace(budget, images_per_epoch=size // budget.batch * budget.batch)
    return Plan(datasets, budgets, runs, configs)


def protocol(opt):
    return grid.Protocol(images=opt.eval_images, seg_iterations=opt.seg_iterations,
                         eval_args=tuple(shlex.split(opt.eval_args)), gpu_ids=opt.gpu_ids)


# ------------------------------------------------------------------------------------------------ estimate
def cost_path(opt):
    return os.path.join(opt.out, "cost.json")


def load_cost(opt):
    if not os.path.isfile(cost_path(opt)):
        return {}
    from evaluation.report import load_costs
    try:
        return load_costs(cost_path(opt))
    except ValueError as e:
        sys.exit(f"error: {e}; measure again with --cost")


def estimate(opt, the_plan, timings, costs):
    """CPU seconds left, per (dataset, generator): [(mode, key, runs left, seconds per run or None, where the
    number comes from)]. From the pair's finished runs (their training and evaluation in timings.json), else from
    cost.json (training CPU seconds per image x images seen, plus the dataset's measured evaluation)."""
    rows = []
    for mode, budget in the_plan.budgets.items():
        for key in opt.generators:
            runs = [r for r in the_plan.runs if r.dataset.mode == mode and the_plan.configs[r.name] == key]
            left = [r for r in runs if not os.path.isfile(grid.metrics_file(opt.out, r.name))]
            finished = [s for s in (grid.run_cpu_seconds(timings, r.name) for r in runs) if s is not None]
            measured = ((costs.get("datasets") or {}).get(mode) or {}).get(key)
            evaluation = (costs.get("evaluation") or {}).get(mode)
            if finished:
                seconds, source = statistics.fmean(finished), f"{len(finished)} finished run(s) in timings.json"
            elif measured and evaluation:
                seconds = budget.images_seen * measured["training_cpu_s_per_image"] + evaluation["cpu_s"]
                source = (f"cost.json: {measured['training_cpu_s_per_image']:.3f} CPU s per training image x "
                          f"{budget.images_seen:,} + evaluation {evaluation['cpu_s']:.0f} CPU s; without train.py's "
                          f"start and saves")
            else:
                seconds, source = None, "not measured: run --cost (or one seed) first"
            rows.append((mode, key, len(left), seconds, source))
    return rows


def print_plan(opt, the_plan, protocol_):
    timings = grid.load_timings(os.path.join(opt.out, "timings.json"))
    costs = load_cost(opt)
    for mode, budget in the_plan.budgets.items():
        print(f"{mode}: {budget.describe()}")
    print(f"protocol: evaluate.py --metrics {grid.METRICS} --how_many {protocol_.images} --seed 0 (the same first "
          f"{protocol_.images} test layouts for every run; FID at that count)")
    for key in opt.generators:
        print(f"{key}: {' '.join(CONFIGS[key])}")
    total, unknown, runs_left = 0.0, [], 0
    print("runs left, CPU per run and where it comes from:")
    for mode, key, left, seconds, source in estimate(opt, the_plan, timings, costs):
        runs_left += left
        per_run = "?" if seconds is None else f"{seconds / 60:.1f} CPU min"
        print(f"  {mode} {key}: {left} runs left x {per_run} ({source})")
        if left and seconds is None:
            unknown.append(f"{mode} {key}")
        elif seconds is not None:
            total += left * seconds
    segmenters = [d.mode for d in the_plan.datasets.values() if d.train_segmenter and not os.path.isfile(d.seg_model)]
    if unknown and not total:
        line = f"estimate: none yet for the {runs_left} runs left: measure first with --cost (or run one seed)"
    else:
        line = f"estimate: {total / 3600:.1f} CPU hours for the {runs_left} runs left"
        line += f", not counting {', '.join(unknown)} (not measured)" if unknown else ""
    if segmenters:
        line += f"; plus training the segmenters of {', '.join(segmenters)}"
    print(line)


# ------------------------------------------------------------------------------------------------ cost
def machine():
    """The machine the costs are measured on, with its load average when the measurement began: PyTorch's CPU
    threads wait for each other by spinning, so on a busy machine the CPU seconds of a step grow many times over
    (on 2 shared cores, at a load average of 5, a landscapes step of SC-GAN took 25 times the CPU seconds it takes
    in one thread)."""
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    return OrderedDict(cpu=cpu, cores=os.cpu_count(), threads=torch.get_num_threads(), torch=torch.__version__,
                       load_average=round(os.getloadavg()[0], 2))


def measure_cost(argv, warmup, iterations, windows, save_to=None):
    """In this process: build the run of `argv` (train.py's options) as train.py does and measure it on the
    dataset's own batches. -> {parameters_G, parameters_D, training_images_per_s, training_cpu_s_per_image,
    inference_images_per_s, inference_cpu_s_per_image, peak_memory_mib}; images/s as summarize() dicts over the
    timed windows. save_to (checkpoints_dir): also save the experiment there as 'cost_probe' (opt.json and
    latest_net_G.pth), for one evaluation to be timed on it."""
    import copy

    import torch

    import data
    from benchmarks.bench_models import peak_memory_meter
    from evaluation.report import summarize
    from inference.prepare import prepare_for_inference
    from inference.synthesizer import Synthesizer
    from options.train_options import TrainOptions
    from trainers.pix2pix_trainer import Pix2PixTrainer

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        checkpoints = save_to or tmp
        opt = TrainOptions().parse([*argv, "--name", "cost_probe", "--checkpoints_dir", checkpoints],
                                   save=save_to is not None, verbose=False)
        trainer = Pix2PixTrainer(opt)
        loader = data.create_dataloader(opt)
    device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")

    def batches():
        while True:
            yield from loader

    stream = batches()
    start_meter, peak_mib = peak_memory_meter(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def timed(step, count):
        """-> (images/s per window, CPU seconds per image over all windows)."""
        rates, cpu, images = [], 0.0, 0
        for _ in range(windows):
            sync()
            wall, process = time.perf_counter(), time.process_time()
            seen = 0
            for _ in range(count):
                seen += step()
            sync()
            rates.append(seen / (time.perf_counter() - wall))
            cpu += time.process_time() - process
            images += seen
        return rates, cpu / images

    def train_step():
        batch = next(stream)
        trainer.run_generator_one_step(batch)
        trainer.run_discriminator_one_step(batch)
        return batch["label"].shape[0]

    start_meter()   # the peak covers the optimizers' state, allocated at the first steps
    for _ in range(warmup):
        train_step()
    train_rates, train_cpu = timed(train_step, iterations)
    peak = peak_mib()

    netG = trainer.netG_ema if trainer.netG_ema is not None else trainer.model.netG
    synth = Synthesizer(prepare_for_inference(copy.deepcopy(netG).eval()), opt, device=device)

    def inference_step():
        batch = next(stream)
        synth.synthesize_batch(batch)
        return batch["label"].shape[0]

    for _ in range(warmup):
        inference_step()
    inference_rates, inference_cpu = timed(inference_step, iterations)
    if save_to is not None:
        from checkpointing.storage import save_network
        save_network(trainer.model.netG, os.path.join(save_to, "cost_probe"), "latest", "G")
    return OrderedDict(
        parameters_G=sum(p.numel() for p in trainer.model.netG.parameters()),
        parameters_D=sum(p.numel() for p in trainer.model.netD.parameters()),
        training_images_per_s=summarize(train_rates), training_cpu_s_per_image=train_cpu,
        inference_images_per_s=summarize(inference_rates), inference_cpu_s_per_image=inference_cpu,
        peak_memory_mib=peak)


def cost_child(opt):
    """The child process of --cost: one run's measurement as one JSON line on stdout."""
    request = json.loads(opt._cost_child)
    result = measure_cost(request["argv"], opt.cost_warmup, opt.cost_iterations, opt.cost_windows,
                          request.get("save_to"))
    print(json.dumps(result))


def measure_costs(opt, the_plan, protocol_):
    """--cost: each (dataset, generator) measured in a fresh process, one at a time; once per dataset, one
    evaluation (evaluate.py with the protocol, on the first generator's untrained weights) timed. Merged into
    OUT/cost.json, so measuring some generators again keeps the others."""
    os.makedirs(opt.out, exist_ok=True)
    timings_path = os.path.join(opt.out, "timings.json")
    timings = grid.load_timings(timings_path)
    for dataset in the_plan.datasets.values():   # the evaluation needs the segmenter; the grid needs it anyway
        if dataset.train_segmenter and not os.path.isfile(dataset.seg_model):
            grid.run_command(grid.segmenter_command(dataset, protocol_), timings, f"segmenter {dataset.mode}",
                             timings_path)
    costs = load_cost(opt)
    costs.setdefault("datasets", {}), costs.setdefault("evaluation", {})
    costs["machine"] = machine()
    if costs["machine"]["load_average"] > (os.cpu_count() or 1) / 2:
        print(f"warning: the load average is {costs['machine']['load_average']} on {os.cpu_count()} cores: other "
              f"work is running, and the costs measured now will be too high (cost.json records the load)")
    costs["settings"] = OrderedDict(warmup=opt.cost_warmup, iterations=opt.cost_iterations, windows=opt.cost_windows)
    costs["measured"] = time.strftime("%Y-%m-%d %H:%M")
    first = OrderedDict()
    for run in the_plan.runs:
        first.setdefault((run.dataset.mode, the_plan.configs[run.name]), run)
    for (mode, key), run in first.items():
        with tempfile.TemporaryDirectory() as probe:
            evaluate = mode not in costs["evaluation"] or key == opt.generators[0]
            argv = ["--dataset_mode", mode, "--seed", "0", "--gpu_ids", opt.gpu_ids, *run.dataset.arguments,
                    *run.options]
            request = {"argv": argv, **({"save_to": os.path.join(probe, "checkpoints")} if evaluate else {})}
            print(f"measuring {mode} {key} ...", flush=True)
            done = subprocess.run([sys.executable, "-m", "benchmarks.compare_generators", "--_cost_child",
                                   json.dumps(request), "--cost_warmup", str(opt.cost_warmup), "--cost_iterations",
                                   str(opt.cost_iterations), "--cost_windows", str(opt.cost_windows)],
                                  cwd=grid.REPO, capture_output=True, text=True)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                sys.exit(f"error: measuring {mode} {key} failed (exit status {done.returncode}): {tail}")
            costs["datasets"].setdefault(mode, {})[key] = json.loads(done.stdout.strip().splitlines()[-1])
            if evaluate:
                probe_run = grid.Run("cost_probe", run.dataset, 0, ())
                spent = {}
                grid.run_command(grid.evaluate_command(probe, probe_run, protocol_), spent, "evaluation",
                                 os.path.join(probe, "timings.json"))
                costs["evaluation"][mode] = OrderedDict(spent["evaluation"], images=protocol_.images, generator=key)
        grid.write_json(cost_path(opt), costs)   # after each measurement: a stop keeps what was measured
        line = costs["datasets"][mode][key]
        print(f"{mode} {key}: {line['parameters_G']:,} parameters (G), training "
              f"{line['training_images_per_s']['mean']:.2f} images/s, inference "
              f"{line['inference_images_per_s']['mean']:.2f} images/s, peak {line['peak_memory_mib']:.0f} MiB")
    print(f"wrote {cost_path(opt)}")


# ------------------------------------------------------------------------------------------------ reports
def write_reports(opt, the_plan):
    """OUT/DATASET/ (tools.compare, one row per generator over its seeds) and OUT/index.html + README.md (every
    dataset's table and the figure), from the runs evaluated so far. -> the overview page, or None if none."""
    from evaluation.report import compare, load_costs, write_overview
    checkpoints, results = grid.folders(opt.out)
    costs = load_costs(cost_path(opt)) if os.path.isfile(cost_path(opt)) else None
    sections = []
    for mode, budget in the_plan.budgets.items():
        groups = OrderedDict()
        for run in the_plan.runs:
            if run.dataset.mode == mode and os.path.isfile(grid.metrics_file(opt.out, run.name)):
                groups.setdefault(the_plan.configs[run.name], []).append(run.name)
        if not groups:
            continue
        names = [n for members in groups.values() for n in members]
        try:
            _, _, rows = compare(names, checkpoints_dir=checkpoints, results_dir=results, groups=groups,
                                 out=os.path.join(opt.out, mode), costs=costs,
                                 title=f"{mode}: the generators at one budget")
        except (FileNotFoundError, ValueError) as e:
            sys.exit(f"error: {e}")
        machine_ = costs.get("machine") if costs and mode in costs.get("datasets", {}) else None
        sections.append((mode, rows, f"{mode}/index.html", machine_))
    if not sections:
        return None
    intro = ["Written by python -m benchmarks.compare_generators: every generator trained at one budget per dataset, "
             "with replicate seeds, and scored with one protocol.",
             *(f"Budget on {mode}: {budget.describe()}." for mode, budget in the_plan.budgets.items()),
             f"Protocol: evaluate.py --metrics {grid.METRICS} --how_many {opt.eval_images} --seed 0"
             f"{' ' + opt.eval_args if opt.eval_args else ''}: the same first {opt.eval_images} test layouts for "
             f"every run, FID at {opt.eval_images} images, mIoU of the dataset's segmenter "
             f"({', '.join(os.path.basename(d.seg_model) for d in the_plan.datasets.values())}).",
             "Generators: " + "; ".join(f"{key} ({' '.join(CONFIGS[key])})" for key in opt.generators) + "."]
    html, md, _ = write_overview(sections, opt.out, "The generators side by side", intro)
    return html


# ------------------------------------------------------------------------------------------------ main
def main(argv=None):
    opt = parse_args(argv)
    if opt._cost_child:
        return cost_child(opt)
    modes = check_args(opt)
    the_plan = plan(opt, modes)
    protocol_ = protocol(opt)
    if opt.dry_run:
        grid.run_grid(the_plan.runs, opt.out, protocol_, dry_run=True)
        print_plan(opt, the_plan, protocol_)
        return None
    if opt.cost:
        measure_costs(opt, the_plan, protocol_)
    else:
        for mode, budget in the_plan.budgets.items():
            print(f"{mode}: {budget.describe()}")
        grid.run_grid(the_plan.runs, opt.out, protocol_)
    page = write_reports(opt, the_plan)
    if page:
        print(f"wrote {page}")
    return page


if __name__ == "__main__":
    main()
