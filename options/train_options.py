"""Training options (SPADE's names and defaults)."""
import os

from trainers.eval_monitor import TRAINING_METRICS as EVAL_METRICS
from util.distributed import DEFAULT_TIMEOUT_S
from util.ranges import bounded

from .base_options import BaseOptions
from .eval_options import add_inception_option, add_segmenter_options, finalize_segmenter_options


class TrainOptions(BaseOptions):
    isTrain = True

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        # display and saving (frequencies count images, as in SPADE)
        parser.add_argument("--display_freq", type=bounded(int, min=1), default=100,
                            help="show results every this many images")
        parser.add_argument("--print_freq", type=bounded(int, min=1), default=100,
                            help="print losses every this many images")
        parser.add_argument("--save_latest_freq", type=bounded(int, min=1), default=5000,
                            help="save the latest checkpoint every this many images")
        parser.add_argument("--save_epoch_freq", type=bounded(int, min=1), default=10,
                            help="save a numbered checkpoint every this many epochs")
        parser.add_argument("--no_html", action="store_true", help="do not write web/index.html")
        parser.add_argument("--debug", action="store_true",
                            help="pipeline check: one epoch of at most 4 batches, printing and showing every batch")
        parser.add_argument("--tf_log", action="store_true",
                            help="also log losses and images to TensorBoard (needs the tensorboard package)")

        # training schedule
        parser.add_argument("--continue_train", action="store_true", help="resume from the saved checkpoint")
        parser.add_argument("--overwrite", action="store_true",
                            help="start afresh in an experiment folder that already holds a checkpoint (it is "
                                 "replaced by the new run's first save)")
        parser.add_argument("--init_from", type=str, default="", metavar="FILE",
                            help="start a new run (fresh optimizers, epoch 1) from this generator file, ours or "
                                 "NVlabs SPADE's (e.g. latest_net_G.pth), loaded strictly; {label}_net_D.pth and "
                                 "_E.pth beside it are loaded too when present, else those networks start afresh")
        parser.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                            help="mixed precision: autocast to bf16 or fp16 (fp16 with a GradScaler); spectral "
                                 "norms and batch-norm statistics stay in fp32")
        parser.add_argument("--channels_last", action="store_true", help="channels-last memory format (speed)")
        parser.add_argument("--compile", action="store_true", help="torch.compile the networks (speed)")
        parser.add_argument("--dist_timeout", type=bounded(float, min=0, min_inclusive=False),
                            default=DEFAULT_TIMEOUT_S,
                            help="with several processes: seconds a collective waits for the other ranks before the "
                                 "run stops, naming the rank that stopped answering")
        parser.add_argument("--ema_decay", type=bounded(float, min=0, max=1, max_inclusive=False), default=0.0,
                            help="keep an exponential moving average of G with this decay (e.g. 0.999), saved as "
                                 "*_net_G_ema.pth and used by test.py; 0 keeps none")
        parser.add_argument("--ema_bn_batches", type=bounded(int, min=1), default=10,
                            help="batches over which the EMA generator's batch-norm statistics are recomputed "
                                 "before each save")
        parser.add_argument("--eval_freq", type=bounded(int, min=0), default=0,
                            help="every this many epochs measure --eval_metrics of the (EMA) generator on "
                                 "--eval_how_many validation images, plot them on the page and keep "
                                 "best_net_G.pth; 0: never")
        parser.add_argument("--eval_how_many", type=bounded(int, min=1), default=500,
                            help="validation images for --eval_freq")
        parser.add_argument("--eval_metrics", type=str, default="fid",
                            help="for --eval_freq, comma-separated from fid (needs --inception_weights), miou "
                                 "(the segmenter of --protocol, as evaluate.py: --segmenter_weights or --seg_model)")
        parser.add_argument("--best_metric", type=str, default="auto", choices=("auto", "fid", "miou", "none"),
                            help="--eval_freq: what picks best_net_G.pth: miou (higher is better), fid (lower is "
                                 "better), none; auto: miou when measured, else fid from 2048 validation images "
                                 "on (below that FID is dominated by its bias), else none")
        add_inception_option(parser)
        add_segmenter_options(parser)
        parser.add_argument("--max_nonfinite_steps", type=bounded(int, min=1), default=10,
                            help="stop after this many steps in a row with a NaN/Inf loss (each is skipped)")
        parser.add_argument("--which_epoch", type=str, default="latest", help="checkpoint to resume from")
        parser.add_argument("--niter", type=bounded(int, min=0), default=50, help="epochs at the initial learning rate")
        parser.add_argument("--niter_decay", type=bounded(int, min=0), default=0, help="epochs of linear decay to zero")
        parser.add_argument("--optimizer", type=str, default="adam", choices=("adam", "adamw"),
                            help="adam, or adamw (decoupled weight decay 0.01)")
        parser.add_argument("--beta1", type=bounded(float, min=0, max=1, max_inclusive=False), default=0.0,
                            help="Adam beta1 (0.5 with --no_TTUR)")
        parser.add_argument("--beta2", type=bounded(float, min=0, max=1, max_inclusive=False), default=0.9,
                            help="Adam beta2 (0.999 with --no_TTUR)")
        parser.add_argument("--no_TTUR", action="store_true",
                            help="same learning rate for G and D instead of lr/2 and 2*lr")
        parser.add_argument("--lr", type=bounded(float, min=0, min_inclusive=False), default=0.0002,
                            help="initial learning rate")
        parser.add_argument("--D_steps_per_G", type=bounded(int, min=1), default=1,
                            help="discriminator steps per generator step")

        # discriminator and losses
        parser.add_argument("--ndf", type=bounded(int, min=1), default=64,
                            help="width of the first discriminator layer")
        parser.add_argument("--lambda_feat", type=bounded(float, min=0), default=10.0,
                            help="weight of the feature-matching loss")
        parser.add_argument("--lambda_vgg", type=bounded(float, min=0), default=10.0,
                            help="weight of the VGG perceptual loss (0 turns it off)")
        parser.add_argument("--no_ganFeat_loss", action="store_true", help="no discriminator feature matching")
        parser.add_argument("--no_vgg_loss", action="store_true", help="no VGG perceptual loss")
        parser.add_argument("--vgg_weights", type=str,
                            default=os.path.expanduser("~/.cache/torch/hub/checkpoints/vgg19-dcbb9e9d.pth"),
                            help="ImageNet VGG weights (torchvision state dict of --vgg_net) for the perceptual loss")
        parser.add_argument("--vgg_net", type=str, default="vgg19", choices=("vgg19", "vgg16"),
                            help="VGG of the perceptual loss: vgg19 (the paper), or vgg16 (same five relu taps and "
                                 "weights; a deviation for machines with only a VGG16 file, e.g. LPIPS' backbone)")
        parser.add_argument("--gan_mode", type=str, default="hinge", choices=("hinge", "ls", "original", "w"))
        parser.add_argument("--netD", type=str, default="multiscale", help="discriminator")
        parser.add_argument("--lambda_kld", type=bounded(float, min=0), default=0.05,
                            help="weight of the VAE's KL divergence")
        return parser

    def modify_dependent_defaults(self, parser, opt):
        if opt.no_TTUR:
            parser.set_defaults(beta1=0.5, beta2=0.999)

    def finalize(self, opt):
        BaseOptions.finalize(self, opt)
        asked = opt.eval_metrics if isinstance(opt.eval_metrics, list) else opt.eval_metrics.split(",")
        opt.eval_metrics = [m.strip() for m in asked if m.strip()]
        unknown = [m for m in opt.eval_metrics if m not in EVAL_METRICS]
        if unknown or not opt.eval_metrics:
            raise SystemExit(f"--eval_metrics {','.join(opt.eval_metrics)}: choose from {','.join(EVAL_METRICS)}")
        if opt.best_metric in ("fid", "miou") and opt.best_metric not in opt.eval_metrics:
            raise SystemExit(f"--best_metric {opt.best_metric} is not measured: add it to --eval_metrics "
                             f"{','.join(opt.eval_metrics)}")
        finalize_segmenter_options(self, opt)   # --eval_metrics miou scores as evaluate.py will
        if opt.niter + opt.niter_decay < 1:
            raise SystemExit(f"--niter {opt.niter} --niter_decay {opt.niter_decay}: nothing to train; give at least "
                             f"one epoch (e.g. --niter 50)")
        if opt.init_from and opt.continue_train:
            raise SystemExit(f"--init_from {opt.init_from} starts a new run from a file (fresh optimizers, epoch 1) "
                             f"and --continue_train resumes the experiment's own checkpoint: give one of them")
        if opt.debug:
            opt.niter, opt.niter_decay = 1, 0
            opt.max_dataset_size = min(opt.max_dataset_size, 4 * opt.batchSize)
            opt.print_freq = opt.display_freq = opt.batchSize
        return opt
