"""Options shared by training and testing, with SPADE's names and defaults.

Options are composed in stages, as in SPADE: the base parser, then the hooks of the chosen model,
generator and dataset mode (each may add options and change defaults), then the generator's per-dataset
presets, then the discriminator and encoder hooks. Precedence, strongest first: the command line, the saved
options of the experiment (``checkpoints/NAME/opt.json``, read by test.py and by ``--load_from_opt_file``),
the generator's presets, the dataset hook, the network hooks, these base defaults.

Options are saved as opt.json (data only) plus SPADE's readable opt.txt. NVlabs SPADE's opt.pkl is read only
for folders that have no opt.json and only with --trust_pickle, since unpickling a file can run code.
"""
import argparse
import json
import os
import pickle
import sys

import torch

import data
import models
from models import networks
from models.networks.layout_lookup import LAYOUT_PATHS
from util.distributed import launched_by_torchrun, world_size_from_environment
from util.ranges import bounded, check_values
from util.registry import RegistryError

SQUARE_CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop", "scale_shortside_and_crop")


HELP_EPILOG = ("Options of a network or dataset appear when it is chosen: python train.py --netG scgan --help lists "
               "SC-GAN's, --dataset_mode ade20k --help the dataset's and the preset's defaults.")


def default_gpu_ids():
    return "0" if torch.cuda.is_available() else "-1"


class OptionParser(argparse.ArgumentParser):
    """argparse, except that a mistake is one line and where the options are listed, not the usage block first
    (20 to 50 lines once the hooks have added their options)."""

    def error(self, message):
        main = sys.modules.get("__main__")
        spec = getattr(main, "__spec__", None)  # run as python -m tools.NAME, or as a script
        command = (f"python -m {spec.name.removesuffix('.__main__')}" if spec is not None and spec.name else
                   f"python {self.prog}")
        self.exit(2, f"{self.prog}: error: {message} ({command} --help lists the options)\n")


class BaseOptions:
    isTrain = False
    # Options that describe one run rather than the trained model: never taken from a saved opt.pkl.
    per_run_options = ("name", "checkpoints_dir", "gpu_ids", "isTrain", "phase", "batchSize", "nThreads",
                       "serial_batches", "no_flip", "load_size", "max_dataset_size", "load_from_opt_file",
                       "continue_train", "which_epoch", "how_many", "results_dir", "label_dir", "image_dir",
                       "instance_dir", "cache_filelist_write", "cache_filelist_read", "debug", "trust_pickle",
                       "overwrite", "no_ema", "init_from", "dist_timeout", "num_threads", "layout_conv")

    def initialize(self, parser):
        # experiment
        parser.add_argument("--name", type=str, default="label2coco",
                            help="name of the experiment; checkpoints go to checkpoints_dir/name")
        parser.add_argument("--gpu_ids", type=str, default=default_gpu_ids(),
                            help="GPU ids, e.g. 0 or 0,1,2 (one training process per GPU, DDP); -1 runs on the CPU "
                                 "(the default without CUDA)")
        parser.add_argument("--checkpoints_dir", type=str, default="./checkpoints", help="models are saved here")
        parser.add_argument("--model", type=str, default="pix2pix", help="which model wraps the networks")
        parser.add_argument("--norm_G", type=str, default="spectralinstance",
                            help="norm of the generator, e.g. spectralspadesyncbatch3x3")
        parser.add_argument("--norm_D", type=str, default="spectralinstance", help="norm of the discriminator")
        parser.add_argument("--norm_E", type=str, default="spectralinstance", help="norm of the VAE encoder")
        parser.add_argument("--phase", type=str, default="train", help="train, val, test, ...")
        parser.add_argument("--seed", type=bounded(int, min=0), default=0,
                            help="random seed for weights, data order and the synthetic dataset")

        # sizes
        parser.add_argument("--batchSize", type=bounded(int, min=1), default=1, help="input batch size")
        parser.add_argument("--preprocess_mode", type=str, default="scale_width_and_crop",
                            choices=("resize_and_crop", "crop", "scale_width", "scale_width_and_crop",
                                     "scale_shortside", "scale_shortside_and_crop", "fixed", "none"),
                            help="scaling and cropping of images at load time")
        parser.add_argument("--load_size", type=bounded(int, min=1), default=1024,
                            help="scale images to this size before cropping (see --preprocess_mode)")
        parser.add_argument("--crop_size", type=bounded(int, min=1), default=512, help="crop images to this size")
        parser.add_argument("--aspect_ratio", type=bounded(float, min=0, min_inclusive=False), default=1.0,
                            help="width / height of the generated image")
        parser.add_argument("--label_nc", type=bounded(int, min=0), default=182,
                            help="number of label classes, not counting the dontcare label")
        parser.add_argument("--contain_dontcare_label", action="store_true",
                            help="the label maps hold a dontcare label (255), one-hot as an extra channel")
        parser.add_argument("--output_nc", type=bounded(int, min=1), default=3, help="number of output image channels")

        # input
        parser.add_argument("--dataroot", type=str, default="./datasets/cityscapes/",
                            help="the dataset's folder; each --dataset_mode sets its own default (coco: "
                                 "./datasets/coco_stuff/)")
        parser.add_argument("--dataset_mode", type=str, default="coco",
                            help=f"dataset: {', '.join(data.DATASETS.names())}; each adds its own options and defaults")
        parser.add_argument("--serial_batches", action="store_true",
                            help="take images in order instead of shuffling")
        parser.add_argument("--no_flip", action="store_true", help="do not flip images for augmentation")
        parser.add_argument("--nThreads", type=bounded(int, min=0), default=0, help="number of data-loading workers")
        parser.add_argument("--num_threads", type=bounded(int, min=1, special={0: "PyTorch's choice"}), default=0,
                            help="PyTorch's CPU threads (torch.set_num_threads, and the inter-op threads); 0 keeps "
                                 "PyTorch's choice (one per core, or OMP_NUM_THREADS). On a shared or loaded machine "
                                 "fewer threads than cores, often 1, run faster")
        parser.add_argument("--layout_conv", choices=LAYOUT_PATHS, default="auto",
                            help="how the layers that read the one-hot layout compute: 'lookup' (a table lookup of "
                                 "the class ids), 'conv' (a convolution of the one-hot tensor; the same result), "
                                 "'auto' (the path measured faster on the device: the lookup on the CPU, the "
                                 "convolution on CUDA; docs/benchmarks.md)")
        parser.add_argument("--max_dataset_size", type=bounded(int, min=1), default=sys.maxsize,
                            help="use at most this many samples of the dataset")
        parser.add_argument("--load_from_opt_file", action="store_true",
                            help="take defaults from the saved options of the experiment (checkpoints/NAME/opt.json)")
        parser.add_argument("--trust_pickle", action="store_true",
                            help="allow reading pickled files of this experiment (NVlabs SPADE's opt.pkl, .pth files "
                                 "that are not plain state dicts); unpickling can run code: only for files you trust")
        parser.add_argument("--cache_filelist_write", action="store_true",
                            help="write the list of files found under the data folders to files.list")
        parser.add_argument("--cache_filelist_read", action="store_true",
                            help="read the list of files from files.list instead of walking the folders")

        # display
        parser.add_argument("--display_winsize", type=bounded(int, min=1), default=400,
                            help="width of images on HTML pages")

        # generator
        parser.add_argument("--netG", type=str, default="spade",
                            help=f"generator: {', '.join(networks.GENERATORS.names())}")
        parser.add_argument("--ngf", type=bounded(int, min=1), default=64,
                            help="width of the first/last generator layer")
        parser.add_argument("--init_type", type=str, default="xavier",
                            choices=("normal", "xavier", "xavier_uniform", "kaiming", "orthogonal", "none"),
                            help="weight initialisation")
        parser.add_argument("--init_variance", type=bounded(float, min=0, min_inclusive=False), default=0.02,
                            help="gain of the initialisation")
        parser.add_argument("--z_dim", type=bounded(int, min=1), default=256, help="dimension of the latent code z")

        # instance maps and VAE
        parser.add_argument("--no_instance", action="store_true", help="do not add the instance edge map")
        parser.add_argument("--netE", type=str, default="conv",
                            help=f"VAE encoder: {', '.join(networks.ENCODERS.names())}")
        parser.add_argument("--nef", type=bounded(int, min=1, special={-1: "uses --ngf"}), default=-1,
                            help="width of the encoder's first layer; -1 uses ngf (as SPADE's encoder does)")
        parser.add_argument("--use_vae", action=argparse.BooleanOptionalAction, default=False,
                            help="encode the real image into z with a VAE encoder (multimodal synthesis); "
                                 "--no-use_vae turns off a preset's VAE")
        return parser

    # ------------------------------------------------------------------------------------------------
    def gather_options(self, argv):
        # --help is answered after the hooks of the chosen model, generator, dataset, discriminator and encoder have
        # added their options, so `--netG scgan --help` lists SC-GAN's (argparse's own -h would stop at the first
        # parse, before any hook ran)
        parser = OptionParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter, add_help=False,
                              epilog=HELP_EPILOG)
        parser.add_argument("-h", "--help", action="store_true",
                            help="show the options of the chosen --model, --netG, --dataset_mode, --netD and "
                                 "--netE (with their presets as defaults) and exit")
        self.initialize(parser)
        try:
            return self._compose(parser, argv)
        except RegistryError as e:
            parser.error(str(e))

    def _compose(self, parser, argv):
        asks_help = "-h" in argv or "--help" in argv

        def known(parser, argv):
            # with --help, an option a hook requires (--label_dir of custom) is listed, not demanded
            required = [a for a in parser._actions if a.required]
            for action in required if asks_help else ():
                action.required = False
            try:
                return parser.parse_known_args(argv)
            finally:
                for action in required:
                    action.required = True

        opt, _ = known(parser, argv)
        if not opt.help:
            self.resolve_experiment(parser, opt)
        saved = self.load_saved_options(opt) if not opt.help else None
        self._apply_saved(parser, saved)
        opt, _ = known(parser, argv)

        models.MODELS.get(opt.model).modify_commandline_options(parser, self.isTrain)
        self._apply_saved(parser, saved)
        opt, _ = known(parser, argv)  # the model may choose the generator (--model unpaired)
        generator = networks.GENERATORS.get(opt.netG)
        generator.modify_commandline_options(parser, self.isTrain)
        opt, _ = known(parser, argv)
        data.DATASETS.get(opt.dataset_mode).modify_commandline_options(parser, self.isTrain)
        self._apply_saved(parser, saved)
        opt, _ = known(parser, argv)

        # Presets may choose the discriminator, so they come before its hook, and again after it.
        self._apply_presets(parser, generator, opt.dataset_mode, final=False)
        self._apply_saved(parser, saved)
        opt, _ = known(parser, argv)
        if self.isTrain:
            networks.DISCRIMINATORS.get(opt.netD).modify_commandline_options(parser, self.isTrain)
        if opt.use_vae:
            networks.ENCODERS.get(opt.netE).modify_commandline_options(parser, self.isTrain)
        self._apply_presets(parser, generator, opt.dataset_mode, final=True)
        self._apply_saved(parser, saved)
        self.modify_dependent_defaults(parser, known(parser, argv)[0])
        self.parser = parser
        if opt.help:
            parser.print_help()
            raise SystemExit(0)
        opt = parser.parse_args(argv)
        del opt.help
        # a value out of range that came from the saved options is told by the file, not as an argument
        check_values(parser, opt, {k: self.saved_from for k, v in (saved or {}).items()
                                   if k not in self.per_run_options and getattr(opt, k, None) == v})
        return opt

    def modify_dependent_defaults(self, parser, opt):
        """Defaults that depend on other options (TrainOptions: Adam betas with --no_TTUR)."""

    def _apply_presets(self, parser, generator, dataset_mode, final):
        preset = generator.dataset_presets.get(dataset_mode, {})
        known = {a.dest for a in parser._actions}
        if final and self.isTrain:
            unknown = sorted(set(preset) - known)
            if unknown:
                raise ValueError(f"preset of --netG {generator.registered_name} for --dataset_mode "
                                 f"{dataset_mode} sets unknown options: {unknown}")
        parser.set_defaults(**{k: v for k, v in preset.items() if k in known})

    def _apply_saved(self, parser, saved):
        if not saved:
            return
        known = {a.dest for a in parser._actions}
        parser.set_defaults(**{k: v for k, v in saved.items()
                               if k in known and k not in self.per_run_options})

    def use_saved_options(self, opt):
        return opt.load_from_opt_file

    def resolve_experiment(self, parser, opt):
        """TestOptions: find the experiment to test (see there). Training names its experiment itself."""

    def load_saved_options(self, opt):
        """The saved options of this experiment as a dict, or None if they are not asked for or absent."""
        if not self.use_saved_options(opt):
            return None
        folder = os.path.join(opt.checkpoints_dir, opt.name)
        path = os.path.join(folder, "opt.json")
        if os.path.isfile(path):
            self.saved_from = path
            return read_options_json(path)
        pkl = os.path.join(folder, "opt.pkl")
        if os.path.isfile(pkl):
            self.saved_from = pkl
            return read_options_pickle(pkl, opt.trust_pickle)
        if opt.load_from_opt_file:
            raise SystemExit(f"--load_from_opt_file: {path} does not exist (was --name {opt.name} trained "
                             f"with --checkpoints_dir {opt.checkpoints_dir}?)")
        return None

    # ------------------------------------------------------------------------------------------------
    def parse(self, argv=None, save=True, verbose=True):
        self.argv = sys.argv[1:] if argv is None else list(argv)
        opt = self.gather_options(self.argv)
        opt.isTrain = self.isTrain
        self.finalize(opt)
        set_num_threads(opt.num_threads)   # before any work, so every operation of the run uses them
        if verbose:
            self.print_options(opt)
        if opt.isTrain and save:
            self.save_options(opt)
        self.opt = opt
        return opt

    def finalize(self, opt):
        """Derive the sizes every network needs, once, so models are rebuilt from options alone."""
        opt.semantic_nc = opt.label_nc + int(opt.contain_dontcare_label) + int(not opt.no_instance)
        if opt.nef == -1:
            opt.nef = opt.ngf
        if opt.aspect_ratio != 1 and opt.preprocess_mode in SQUARE_CROP_MODES:
            raise SystemExit(f"--aspect_ratio {opt.aspect_ratio:g} with --preprocess_mode {opt.preprocess_mode}: that "
                             f"mode cuts square {opt.crop_size}x{opt.crop_size} crops; use --aspect_ratio 1, or "
                             f"--preprocess_mode fixed for {opt.crop_size}-wide images of that aspect ratio")
        opt.gpu_ids = parse_gpu_ids(opt.gpu_ids)
        world = world_size_from_environment(opt.gpu_ids) if self.isTrain else 1
        if opt.batchSize % world != 0:
            where = (f"the {world} processes of this torchrun" if launched_by_torchrun() else
                     f"the {world} GPUs in --gpu_ids {','.join(map(str, opt.gpu_ids))}")
            raise SystemExit(f"--batchSize {opt.batchSize} (the global batch) is not divisible by {where}: choose a "
                             f"multiple of {world}")
        return opt

    def given_on_command_line(self, option):
        return any(a == option or a.startswith(option + "=") for a in self.argv)

    def option_table(self, opt):
        lines = ["----------------- Options ---------------"]
        dests = {a.dest for a in self.parser._actions}
        for k, v in sorted(vars(opt).items()):
            default = self.parser.get_default(k)
            comment = f"\t[default: {default}]" if k in dests and v != default else ""
            lines.append(f"{k:>25}: {str(v):<30}{comment}")
        lines.append("----------------- End -------------------")
        return "\n".join(lines)

    def print_options(self, opt):
        print(self.option_table(opt))
        how = f"--num_threads {opt.num_threads}" if opt.num_threads else "PyTorch's choice; --num_threads N to change"
        print(f"threads: {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op ({how})")

    def save_options(self, opt):
        """Write checkpoints/NAME/opt.txt (readable) and opt.json (reloadable), each atomically."""
        from checkpointing.storage import atomic_write_bytes
        expr_dir = os.path.join(opt.checkpoints_dir, opt.name)
        atomic_write_bytes(os.path.join(expr_dir, "opt.txt"), (self.option_table(opt) + "\n").encode())
        atomic_write_bytes(os.path.join(expr_dir, "opt.json"),
                           (json.dumps(vars(opt), indent=1, sort_keys=True) + "\n").encode())


def set_num_threads(n):
    """--num_threads n > 0: PyTorch's intra-op threads and, where this process has not yet fixed them, its
    inter-op threads (settable once, before any inter-op work; a caller that parses options again in one process,
    as the tests do, keeps the first value). 0 leaves PyTorch's choice."""
    if n <= 0:
        return
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:   # "cannot set number of interop threads after parallel work has started or ..."
        pass


def read_options_json(path):
    try:
        with open(path) as f:
            saved = json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path} cannot be read as saved options ({type(e).__name__}: {e}): fix or delete it, "
                         f"and give the options on the command line") from None
    if not isinstance(saved, dict):
        raise SystemExit(f"{path} does not hold saved options (a JSON object of option names and values): "
                         f"fix or delete it")
    return saved


class _NamespaceOnly(pickle.Unpickler):
    """Reads SPADE's opt.pkl (a pickled argparse.Namespace of plain values) and nothing else."""

    def find_class(self, module, name):
        if (module, name) == ("argparse", "Namespace"):
            return argparse.Namespace
        raise pickle.UnpicklingError(f"it names {module}.{name}, which an options file never holds")


def read_options_pickle(path, trust_pickle):
    """NVlabs SPADE's opt.pkl: only with --trust_pickle, and even then only an argparse.Namespace of values."""
    if not trust_pickle:
        raise SystemExit(f"{path} is a pickle (NVlabs SPADE's options file) and this experiment has no opt.json; "
                         f"unpickling a file can run code, so it is read only with --trust_pickle: pass it if you "
                         f"trust this folder, or delete the file and give the options on the command line")
    try:
        with open(path, "rb") as f:
            saved = _NamespaceOnly(f).load()
        return vars(saved)
    except Exception as e:
        raise SystemExit(f"{path} cannot be read as saved options ({type(e).__name__}: {e}): delete it and give "
                         f"the options on the command line") from None


def parse_gpu_ids(text):
    """'0,1' -> [0, 1]; '-1' -> [] (CPU). Asking for a GPU without CUDA is an error that says so."""
    if isinstance(text, list):
        return text
    try:
        ids = [int(s) for s in str(text).split(",") if s.strip() != ""]
    except ValueError:
        raise SystemExit(f"--gpu_ids {text}: expected comma-separated integers such as 0,1 or -1 for the CPU")
    ids = [i for i in ids if i >= 0]
    if ids and not torch.cuda.is_available():
        raise SystemExit(f"--gpu_ids {text} asks for CUDA, but this PyTorch sees no GPU: "
                         "use --gpu_ids -1 to run on the CPU")
    if ids and max(ids) >= torch.cuda.device_count():
        raise SystemExit(f"--gpu_ids {text}: only {torch.cuda.device_count()} GPU(s) are visible")
    return ids
