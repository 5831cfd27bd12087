"""Inference: a trained experiment as an application. `Synthesizer` (synthesizer.py) takes label maps and returns
images; `fold_spectral_norms` (folding.py) makes a generator's spectral norms constants; export.py writes an
ONNX file of the folded generator (run by tools/export.py). docs/inference.md shows them in use."""
from .folding import fold_spectral_norms
from .synthesizer import Synthesizer, read_experiment_options

__all__ = ["Synthesizer", "fold_spectral_norms", "read_experiment_options"]
