"""Parameter counts of the networks the options build, layer by layer (models/summary.py).

    python -m tools.summary --netG scgan --dataset_mode coco [any train.py option]
"""
from models.summary import summarize
from options.train_options import TrainOptions


def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv, save=False, verbose=False)
    summarize(opt)


if __name__ == "__main__":
    main()
