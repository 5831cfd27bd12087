"""Command-line options: BaseOptions, TrainOptions, TestOptions (SPADE's names and defaults)."""
