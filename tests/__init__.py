"""The test suite (a package, so that `tests.browser` never resolves to a `tests` package some dependency installs, as torch-fidelity does)."""
