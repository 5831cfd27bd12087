"""`--dataset_mode synthetic_unaligned`: the bundled faces in two domains, generated on the fly, for
`--model unpaired` (data/synthetic.py `render_domain`): domain A the faces as drawn, domain B other faces in the
cold monochrome `winter` scheme (blue > green > red at every pixel). Samples, pairing and transforms are those of
`--dataset_mode unaligned` (data/unaligned_dataset.py); `python -m tools.write_synthetic --unaligned --out DIR` writes
the same images in its folder layout.
"""
from PIL import Image

from util.ranges import bounded

from . import DATASETS
from .unaligned_dataset import UnalignedDataset, set_no_layout

# data.synthetic (the drawing code) is imported on first use, when a sample is drawn.


@DATASETS.register("synthetic_unaligned")
class SyntheticUnalignedDataset(UnalignedDataset):

    @staticmethod
    def modify_commandline_options(parser, is_train):
        set_no_layout(parser)
        parser.add_argument("--num_synthetic", type=bounded(int, min=1), default=200,
                            help="number of synthetic images in each domain")
        parser.set_defaults(preprocess_mode="resize_and_crop", load_size=64, crop_size=64, display_winsize=128)
        # the CPU demo's model and schedule, as --dataset_mode synthetic has (the VGG loss stays on: it is what
        # keeps the source's layout, so --vgg_weights is needed)
        parser.set_defaults(ndf=16, batchSize=4, niter=5, niter_decay=5, print_freq=40, display_freq=200,
                            save_latest_freq=400, save_epoch_freq=5)
        return parser

    def get_paths(self, opt):
        n = opt.num_synthetic
        return ([f"synthetic/{opt.phase}A/{i:05d}.png" for i in range(n)],
                [f"synthetic/{opt.phase}B/{i:05d}.png" for i in range(n)])

    def load_image(self, path, domain: str, index: int):
        from .synthetic import render_domain
        opt = self.opt
        return Image.fromarray(render_domain(index, domain, opt.seed, opt.load_size, opt.phase), mode="RGB")

