"""Commands beside train.py and test.py: `python -m tools.export` (ONNX export of an experiment's generator)."""
