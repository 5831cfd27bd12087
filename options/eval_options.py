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
    """--seg_model and --seg_label_map, shared by evaluate.py and training's --eval_metrics miou."""
    parser.add_argument("--seg_model", type=str, default="",
                        help="TorchScript segmenter: (B, 3, H, W) image in [-1, 1] -> (B, C, H, W) logits")
    parser.add_argument("--seg_label_map", type=str, default="",
                        help="DATASET_ID:SEG_ID pairs (or a file of them) when the segmenter's classes "
                             "differ from the dataset's; unlisted ids are ignored")


class EvalOptions(TestOptions):
    def initialize(self, parser):
        TestOptions.initialize(self, parser)
        parser.add_argument("--protocol", type=str, default="", choices=("",) + protocols.NAMES,
                            help="paper: the SC-GAN paper's metrics, segmenter and label mapping for the dataset "
                                 f"(default for {', '.join(protocols.PAPER_DATASETS)}); custom: --metrics, "
                                 "--seg_model, --seg_label_map (default for other dataset modes)")
        parser.add_argument("--segmenter_weights", type=str, nargs="+", default=None, metavar="FILE",
                            help="--protocol paper: the released weights file(s) of the dataset's segmenter (ade20k: "
                                 "encoder_epoch_50.pth decoder_epoch_50.pth); default: the released names under "
                                 ".weights/")
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
        opt.protocol = opt.protocol or protocols.default_protocol(opt.dataset_mode)
        if opt.protocol == protocols.PAPER:
            self.finalize_paper(opt)
        elif opt.segmenter_weights is not None:
            raise SystemExit("--segmenter_weights: the files of the paper's segmenters are for --protocol paper; "
                             "--protocol custom scores with --seg_model")
        return opt

    def finalize_paper(self, opt):
        """--protocol paper: the paper's metrics (or a subset given with --metrics) and segmenter files."""
        try:
            protocol = protocols.paper_protocol(opt.dataset_mode,
                                               opt.dataset_mode == "ade20k" and opt.ade20k_raw_labels)
        except ValueError as e:
            raise SystemExit(str(e)) from None
        if self.given_on_command_line("--metrics"):
            extra = [m for m in opt.metrics if m not in protocol.metrics]
            if extra:
                raise SystemExit(f"--metrics {','.join(opt.metrics)}: --protocol paper measures "
                                 f"{','.join(protocol.metrics)} on {opt.dataset_mode} (or a subset); for "
                                 f"{','.join(extra)} use --protocol custom")
        else:
            opt.metrics = list(protocol.metrics)
        for option in ("--seg_model", "--seg_label_map"):
            if self.given_on_command_line(option):
                raise SystemExit(f"{option}: --protocol paper scores with the paper's segmenter "
                                 f"({protocol.segmenter.network}, --segmenter_weights); for your own segmenter "
                                 f"use --protocol custom")
        if opt.segmenter_weights is None:
            opt.segmenter_weights = protocol.segmenter.default_weights()
