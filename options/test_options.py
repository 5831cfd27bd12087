"""Test options (SPADE's names and defaults). The saved training options of the experiment are read
automatically, so `python test.py --name NAME` needs nothing else."""
from .base_options import BaseOptions


class TestOptions(BaseOptions):
    isTrain = False

    def initialize(self, parser):
        BaseOptions.initialize(self, parser)
        parser.add_argument("--results_dir", type=str, default="./results/", help="results are saved here")
        parser.add_argument("--which_epoch", type=str, default="latest", help="checkpoint to load")
        parser.add_argument("--how_many", type=float, default=float("inf"), help="how many test images to run")
        parser.set_defaults(preprocess_mode="scale_width_and_crop", crop_size=256, load_size=256,
                            display_winsize=256, serial_batches=True, no_flip=True, phase="test")
        return parser

    def use_saved_options(self, opt):
        return True

    def finalize(self, opt):
        BaseOptions.finalize(self, opt)
        if not self.given_on_command_line("--load_size"):
            opt.load_size = opt.crop_size  # no random crop at test time
        return opt
