"""Inference: a trained experiment as an application. `Synthesizer` (synthesizer.py) takes label maps and returns
images; `fold_spectral_norms` (folding.py) makes a generator's spectral norms constants, and `prepare_for_inference`
(prepare.py) also sets the path of its layout convolutions (lookup or convolution); export.py writes an
ONNX file of the folded generator (run by tools/export.py). docs/inference.md shows them in use."""
from .folding import fold_spectral_norms
from .prepare import prepare_for_inference
from .synthesizer import Synthesizer, read_experiment_options

__all__ = ["Synthesizer", "fold_spectral_norms", "prepare_for_inference", "read_experiment_options"]
