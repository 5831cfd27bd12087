"""How long a test waits for a subprocess or a page: a guard against a hung process, never a speed limit.

A test must not fail because the machine is slow or loaded (a benchmark that took 47 s alone took over 120 s
beside other work on the same two cores). Where a test waits, it waits on what the program writes or on its exit,
and the only wall-clock bound is this one, far above what any run of the suite needs (the slowest subprocess of
the suite, the DDP run of tests/test_ddp.py, takes minutes), so that a hang still ends the test instead of the CI
job.
"""
HANG_GUARD_S = 3600
