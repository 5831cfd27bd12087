"""Commands beside train.py, test.py, evaluate.py and demo.py, each run as `python -m tools.NAME`:
import_checkpoint (released files <-> checkpoints/NAME), export (ONNX), weights (the evaluation networks' files),
train_segmenter, check_segmenter, analyze_sv (semantic vectors), summary (parameter counts), write_synthetic
(the bundled dataset on disk), preview_landscapes (a picture of the bundled landscapes). They parse options; the
library packages they call never do."""
