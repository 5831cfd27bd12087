"""Options of the painting demo (demo.py): the test options (the experiment's saved options are read, so the
model is rebuilt as trained) plus where the local page is served."""
from util.ranges import bounded

from .test_options import TestOptions, add_precision_option, check_precision


class DemoOptions(TestOptions):
    def initialize(self, parser):
        TestOptions.initialize(self, parser)
        parser.add_argument("--host", type=str, default="127.0.0.1",
                            help="address the page is served on (0.0.0.0 opens it to the network)")
        parser.add_argument("--port", type=bounded(int, min=1, max=65535), default=7860, help="port of the page")
        add_precision_option(parser)   # bf16: a stroke's image sooner on a CPU with bf16 instructions
        return parser

    def finalize(self, opt):
        TestOptions.finalize(self, opt)
        check_precision(opt)
        return opt
