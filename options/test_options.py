"""Test options (SPADE's names and defaults). The saved training options of the experiment are read
automatically, so `python test.py --name NAME` needs nothing else; without --name, the experiment most recently
trained under --checkpoints_dir is tested."""
import os
import warnings

from inference.multimodal import check_options
from inference.synthesizer import SlowPrecisionWarning, bf16_cpu_cost
from util.ranges import bounded

from .base_options import BaseOptions


def experiments_with(checkpoints_dir, which_epoch):
    """{name: mtime of its {which_epoch}_net_G.pth} for the experiments under checkpoints_dir that have one."""
    found = {}
    if os.path.isdir(checkpoints_dir):
        for name in sorted(os.listdir(checkpoints_dir)):
            path = os.path.join(checkpoints_dir, name, f"{which_epoch}_net_G.pth")
            if os.path.isfile(path):
                found[name] = os.path.getmtime(path)
    return found


def describe_experiments(checkpoints_dir):
    """'a (latest, 10), b (latest)' for every experiment folder holding generator checkpoints."""
    items = []
    if os.path.isdir(checkpoints_dir):
        for name in sorted(os.listdir(checkpoints_dir)):
            folder = os.path.join(checkpoints_dir, name)
            labels = sorted((f[:-len("_net_G.pth")] for f in os.listdir(folder) if f.endswith("_net_G.pth")),
                            key=lambda x: (x != "latest", int(x) if x.isdigit() else 0)) if os.path.isdir(
                folder) else []
            if labels:
                items.append(f"{name} ({', '.join(labels)})")
    return ", ".join(items) or "none"


def add_precision_option(parser):
    """--precision of the programs that synthesize through inference.Synthesizer (test.py, demo.py)."""
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="the generator's (and encoder's) weights and inputs in this precision; fp16 on CUDA "
                             "only; images are written from float32 either way (inference.Synthesizer)")


def check_precision(opt):
    """Stop with one line when --precision cannot run on the chosen device."""
    if opt.precision == "fp16" and not opt.gpu_ids:
        raise SystemExit("--precision fp16 runs on CUDA only, and --gpu_ids -1 is the CPU: use --precision bf16 "
                         "or fp32, or a GPU (--gpu_ids 0)")


def say_precision_cost(opt):
    """test.py and demo.py, at start: one line when --precision runs much slower than fp32 on the chosen device (bf16
    on a CPU without bf16 instructions, inference/synthesizer.py); the Synthesizer's warning of it is then not
    repeated."""
    cost = bf16_cpu_cost() if opt.precision == "bf16" and not opt.gpu_ids else None
    if cost:
        print(f"--precision bf16: {cost}; --precision fp32 is faster here (docs/inference.md)")
        warnings.filterwarnings("ignore", category=SlowPrecisionWarning)


class TestOptions(BaseOptions):
    isTrain = False
    # test.py and evaluate.py test a trained experiment; tools that build one (the importer) or only need the
    # test-phase data options set this to False
    requires_experiment = True

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        parser.add_argument("--results_dir", type=str, default="./results/", help="results are saved here")
        parser.add_argument("--which_epoch", type=str, default="latest", help="checkpoint to load")
        parser.add_argument("--how_many", type=bounded(float, min=1, allow_inf=True), default=float("inf"),
                            help="how many test images to run")
        parser.add_argument("--no_ema", action="store_true",
                            help="use netG even when the experiment has an EMA generator (*_net_G_ema.pth)")
        parser.set_defaults(preprocess_mode="scale_width_and_crop", crop_size=256, load_size=256,
                            display_winsize=256, serial_batches=True, no_flip=True, phase="test")
        return parser

    def use_saved_options(self, opt):
        return True

    def resolve_experiment(self, parser, opt):
        """Without --name: the experiment most recently trained under --checkpoints_dir (that has the
        --which_epoch checkpoint), said on one line. A --name that was never trained stops here, with the list of
        experiments, before any data is touched."""
        if not self.requires_experiment:
            return
        if not self.given_on_command_line("--name"):
            candidates = experiments_with(opt.checkpoints_dir, opt.which_epoch)
            if not candidates:
                raise SystemExit(f"no --name given and no experiment under {opt.checkpoints_dir} has a "
                                 f"{opt.which_epoch}_net_G.pth; experiments there: "
                                 f"{describe_experiments(opt.checkpoints_dir)}")
            opt.name = max(candidates, key=candidates.get)
            parser.set_defaults(name=opt.name)
            print(f"--name not given: testing '{opt.name}', the experiment most recently trained under "
                  f"{opt.checkpoints_dir}")
            return
        folder = os.path.join(opt.checkpoints_dir, opt.name)
        has_options = any(os.path.isfile(os.path.join(folder, f)) for f in ("opt.json", "opt.pkl"))
        if not has_options and not experiments_with(opt.checkpoints_dir, opt.which_epoch).get(opt.name):
            raise SystemExit(f"no experiment '{opt.name}' under {opt.checkpoints_dir} (no opt.json and no "
                             f"{opt.which_epoch}_net_G.pth in {folder}); experiments there: "
                             f"{describe_experiments(opt.checkpoints_dir)}")

    def finalize(self, opt):
        BaseOptions.finalize(self, opt)
        if not self.given_on_command_line("--load_size"):
            opt.load_size = opt.crop_size  # no random crop at test time
        return opt


class TestPageOptions(TestOptions):
    """test.py's options: TestOptions plus the multimodal rows of the result page (inference/multimodal.py)."""

    def initialize(self, parser):
        TestOptions.initialize(self, parser)
        parser.add_argument("--n_samples", type=bounded(int, min=1), default=1,
                            help="results per label (needs a --use_vae model). 1: one result, its style encoded "
                                 "from the real image when the test set has one (SPADE's test). K >= 2: K results "
                                 "from K random codes z ~ N(0, I), none encoded from the real image (shown last "
                                 "for reference); code k is the same for every label and drawn from --seed")
        parser.add_argument("--interpolate", type=bounded(int, min=2), default=None, metavar="STEPS",
                            help="add a row per label of STEPS (>= 2) results whose code moves linearly from "
                                 "the style of --style_a (t = 0) to that of --style_b (t = 1); a style is the "
                                 "mean mu of the encoder's posterior for the image (needs a --use_vae model)")
        parser.add_argument("--style_a", type=str, default="", help="--interpolate: image file of the first style")
        parser.add_argument("--style_b", type=str, default="", help="--interpolate: image file of the second style")
        parser.add_argument("--allow_nonfinite", action="store_true",
                            help="write the images of a generator whose file holds NaN/Inf weights (refused "
                                 "otherwise: its images would be black or noise)")
        add_precision_option(parser)
        return parser

    def finalize(self, opt):
        TestOptions.finalize(self, opt)
        check_precision(opt)
        if opt.precision != "fp32" and opt.model == "unpaired":
            raise SystemExit(f"--precision {opt.precision}: --model unpaired renders with the model's own method, "
                             f"in fp32 only; leave --precision out")
        try:
            check_options(opt)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        return opt
