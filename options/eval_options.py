"""Evaluation options (evaluate.py): the test options plus the protocol, the metrics and their local weights
files.

--protocol paper (the default for coco, ade20k, cityscapes, celebamaskhq) takes the paper's metrics and segmenter
(evaluation/protocols.py; --segmenter_weights); --protocol custom (the default for other dataset modes) takes
--metrics, --seg_model and --seg_label_map. Every weights file is local (nothing is downloaded); the defaults are
where `.ci/prepare_weights.sh` and the commands of docs/evaluation.md put them, under <repo>/.weights/.
"""
import os

from evaluation import protocols
from evaluation.metrics import DEFAULT_WEIGHTS_DIR
from util.ranges import bounded

from .test_options import TestOptions

METRICS = ("fid", "kid", "lpips", "miou")


def add_inception_option(parser):
    """--inception_weights, shared by evaluate.py and training's --eval_freq."""
    parser.add_argument("--inception_weights", type=str, default=os.path.join(DEFAULT_WEIGHTS_DIR, "inception.pth"),
                        help="FID Inception for torch-fidelity (python -m tools.weights inception)")


def add_segmenter_options(parser):
    """The segmenter that scores mIoU, shared by evaluate.py and training's --eval_metrics miou: --protocol,
    the paper's (--segmenter_weights, --face_resize, --coco_resize) or the user's (--seg_model, --seg_label_map)."""
    parser.add_argument("--protocol", type=str, default="", choices=("",) + protocols.NAMES,
                        help="paper: the SC-GAN paper's segmenter and label mapping for the dataset, and in "
                             f"evaluate.py its metrics (default for {', '.join(protocols.PAPER_DATASETS)}); custom: "
                             "--seg_model, --seg_label_map, and in evaluate.py --metrics (default for other dataset "
                             "modes)")
    parser.add_argument("--segmenter_weights", type=str, nargs="+", default=None, metavar="FILE",
                        help="--protocol paper: the released weights file(s) of the dataset's segmenter (ade20k: "
                             "encoder_epoch_50.pth decoder_epoch_50.pth); default: the released names under "
                             ".weights/")
    parser.add_argument("--face_resize", type=str, default="bicubic", choices=protocols.FACE_RESIZES,
                        help="--protocol paper on celebamaskhq: how images reach the face parser's 512x512: "
                             "bicubic (imaginaire) or nearest (PIL's, the CelebAMask-HQ authors' tester.py)")
    parser.add_argument("--coco_resize", type=str, default="none", choices=protocols.COCO_RESIZES,
                        help="--protocol paper on coco: none (DeepLab v2 sees the image as generated) or 512 "
                             "(imaginaire: longer side to 512, scored at that size)")
    parser.add_argument("--seg_model", type=str, default="",
                        help="segmenter saved by torch.export.save (python -m tools.train_segmenter) or as "
                             "TorchScript: (B, 3, H, W) image in [-1, 1] -> (B, C, H, W) logits")
    parser.add_argument("--seg_label_map", type=str, default="",
                        help="DATASET_ID:SEG_ID pairs (or a file of them) when the segmenter's classes "
                             "differ from the dataset's; unlisted ids are ignored")


def finalize_segmenter_options(options, opt):
    """--protocol resolved to the dataset's default, the segmenter options checked against it, and under paper
    --segmenter_weights defaulted to the released names; -> the paper Protocol, or None under custom.
    Refusals name the option given on the command line (values taken from an experiment's saved options are not
    the user's choice, and the custom protocol drops a saved --segmenter_weights)."""
    opt.protocol = opt.protocol or protocols.default_protocol(opt.dataset_mode)
    for option, dataset in (("--face_resize", "celebamaskhq"), ("--coco_resize", "coco")):
        if options.given_on_command_line(option) and (opt.protocol, opt.dataset_mode) != (protocols.PAPER, dataset):
            raise SystemExit(f"{option}: chooses how the paper's {dataset} segmenter sees the images (--protocol "
                             f"paper on --dataset_mode {dataset}); this run is --protocol {opt.protocol} on "
                             f"{opt.dataset_mode}")
    if opt.protocol != protocols.PAPER:
        if options.given_on_command_line("--segmenter_weights"):
            raise SystemExit("--segmenter_weights: the files of the paper's segmenters are for --protocol paper; "
                             "--protocol custom scores with --seg_model")
        opt.segmenter_weights = None
        return None
    try:
        protocol = protocols.chosen_protocol(opt)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    for option in ("--seg_model", "--seg_label_map"):
        if options.given_on_command_line(option):
            raise SystemExit(f"{option}: --protocol paper scores with the paper's segmenter "
                             f"({protocol.segmenter.network}, --segmenter_weights); for your own segmenter "
                             f"use --protocol custom")
    if opt.segmenter_weights is None:
        opt.segmenter_weights = protocol.segmenter.default_weights()
    return protocol


class EvalOptions(TestOptions):
    def initialize(self, parser):
        TestOptions.initialize(self, parser)
        parser.add_argument("--metrics", type=str, default="fid,kid,lpips",
                            help=f"--protocol custom: comma-separated, from {','.join(METRICS)} (miou needs "
                                 f"--seg_model); --protocol paper: the paper's, or a subset of them")
        parser.add_argument("--from_results", action="store_true",
                            help="read the synthesized images test.py wrote under --results_dir "
                                 "(NAME/PHASE_EPOCH/images/synthesized_image) instead of running the generator")
        add_inception_option(parser)
        parser.add_argument("--kid_subsets", type=bounded(int, min=1), default=100,
                            help="KID: number of random subsets")
        parser.add_argument("--kid_subset_size", type=bounded(int, min=2), default=1000,
                            help="KID: images per subset (capped at the number of images)")
        parser.add_argument("--lpips_net", type=str, default="alex", choices=("alex", "vgg"),
                            help="LPIPS backbone")
        parser.add_argument("--lpips_weights", type=str, default="",
                            help="LPIPS backbone file (python -m tools.weights lpips); default "
                                 ".weights/lpips_NET.pth")
        add_segmenter_options(parser)
        parser.add_argument("--num_examples", type=bounded(int, min=0), default=8, help="example rows on the page")
        return parser

    def finalize(self, opt):
        TestOptions.finalize(self, opt)
        opt.metrics = [m.strip() for m in opt.metrics.split(",") if m.strip()]
        unknown = [m for m in opt.metrics if m not in METRICS]
        if unknown or not opt.metrics:
            raise SystemExit(f"--metrics {','.join(opt.metrics)}: unknown {unknown}; choose from {','.join(METRICS)}")
        if not opt.lpips_weights:
            opt.lpips_weights = os.path.join(DEFAULT_WEIGHTS_DIR, f"lpips_{opt.lpips_net}.pth")
        protocol = finalize_segmenter_options(self, opt)
        if protocol is not None:   # the paper's metrics, or a subset given with --metrics
            if self.given_on_command_line("--metrics"):
                extra = [m for m in opt.metrics if m not in protocol.metrics]
                if extra:
                    raise SystemExit(f"--metrics {','.join(opt.metrics)}: --protocol paper measures "
                                     f"{','.join(protocol.metrics)} on {opt.dataset_mode} (or a subset); for "
                                     f"{','.join(extra)} use --protocol custom")
            else:
                opt.metrics = list(protocol.metrics)
        return opt
