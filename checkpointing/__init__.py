"""Checkpoints: storage.py writes and reads the training unit (all files of one step or none, safe loading);
released.py and released_layouts.py convert the authors' released files (SC-GAN, NVlabs SPADE) to and from
our state dicts, which tools/import_checkpoint.py runs."""
