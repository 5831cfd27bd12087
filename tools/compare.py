"""Compare experiments in one report: every metric side by side, with protocol, model size and speeds.

    python -m tools.compare NAME [NAME ...] [--checkpoints_dir ./checkpoints] [--results_dir ./results] \
        [--which_epoch latest] [--metrics_json FILE ...] [--published coco|ade20k|cityscapes|celebamaskhq] \
        [--group LABEL=NAME,NAME ...] [--spread std|minmax] [--cost cost.json] [--out DIR]

reads results_dir/NAME/eval_EPOCH/metrics.json of each experiment (evaluate.py writes it) and writes DIR/index.html,
DIR/report.md, a scatter of quality against cost and a chart per metric under DIR/images/. Experiments measured
under different protocols are refused with one line naming the two and the setting that differs. Replicate runs
NAME_seed0, NAME_seed1, ... (or the names of a --group) become one row: the mean, the spread and n. --published
adds the paper's numbers for that dataset as rows marked "published" (evaluation/published.py); --cost takes the
cost columns from a file of benchmarks.compare_generators --cost. See evaluation/report.py.
"""
import argparse
import sys

from evaluation.published import DATASETS
from evaluation.report import SPREADS, ProtocolMismatch, compare, load_costs


def parse_group(text):
    label, sep, names = text.partition("=")
    members = [n for n in names.split(",") if n]
    if not sep or not label or not members:
        raise argparse.ArgumentTypeError(f"--group {text}: expected LABEL=NAME,NAME,...")
    return label, members


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="experiments under --results_dir")
    parser.add_argument("--checkpoints_dir", default="./checkpoints",
                        help="where the experiments' checkpoints and loss_log.txt are (parameters, training speed)")
    parser.add_argument("--results_dir", default="./results", help="where evaluate.py wrote NAME/eval_EPOCH/")
    parser.add_argument("--which_epoch", default="latest", help="the evaluated checkpoint, eval_EPOCH")
    parser.add_argument("--metrics_json", nargs="+", default=[], metavar="FILE",
                        help="metrics.json files to add, named by their experiment entry (else their folder)")
    parser.add_argument("--published", choices=DATASETS, default=None,
                        help="add the paper's published rows for this dataset (Table 1, Table 8)")
    parser.add_argument("--group", type=parse_group, action="append", default=[], metavar="LABEL=NAME,NAME",
                        help="show these experiments as one row LABEL (default: NAME_seedK runs group as NAME)")
    parser.add_argument("--spread", choices=SPREADS, default="std",
                        help="spread of a group: sample standard deviation, or minimum and maximum")
    parser.add_argument("--out", default="./results/compare", help="folder for index.html, report.md, images/")
    parser.add_argument("--title", default="Comparison", help="title of the page")
    parser.add_argument("--cost", default=None, metavar="FILE",
                        help="cost.json of python -m benchmarks.compare_generators --cost: its parameters, training "
                             "and inference images/s and peak memory replace those measured during the runs, for "
                             "the rows (group labels) it lists")
    opt = parser.parse_args(argv)
    try:
        costs = load_costs(opt.cost) if opt.cost else None
        html, md, _ = compare(opt.names, opt.metrics_json, opt.checkpoints_dir, opt.results_dir, opt.which_epoch,
                              opt.published, dict(opt.group), opt.spread, opt.out, opt.title, costs)
    except (ProtocolMismatch, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {html} and {md}")
    return html, md


if __name__ == "__main__":
    main()
