"""The run context: which process this is, on which device, and the few collective operations training needs,
all on torch.distributed (NCCL on GPUs, gloo on CPUs).

Three ways a run starts:
- one process (`--gpu_ids -1` on the CPU, or `--gpu_ids 0` on one GPU): no process group;
- `torchrun --nnodes N --nproc_per_node K train.py ...`: torchrun sets RANK, WORLD_SIZE, LOCAL_RANK,
  MASTER_ADDR and MASTER_PORT; each process takes the GPU LOCAL_RANK (or the CPU with `--gpu_ids -1`);
- `python train.py --gpu_ids 0,1,...` (SPADE's habit): `launch` starts one process per listed GPU with
  torch.multiprocessing and a free local port, and each calls the same main function as torchrun's would.

When a rank fails (docs/what-happens-when.md): an error met between steps (a bad data file) travels to
every rank at the next step boundary (`agree`), so all stop together; a rank that dies or hangs inside a step
leaves the others in a collective, which fails at once (gloo, a dead peer) or ends at --dist_timeout, and
`stopped_answering` then names the ranks that did not answer a roll call in the store.
"""
import datetime
import functools
import os
import socket
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class RunContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, pages and checkpoints and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def world_size_from_environment(gpu_ids) -> int:
    """The number of processes this run will have: torchrun's WORLD_SIZE, else one per listed GPU."""
    if launched_by_torchrun():
        return int(os.environ["WORLD_SIZE"])
    return max(1, len(gpu_ids))


# --dist_timeout's default: a collective (a step's gradient all-reduce, the barrier of a save) that has waited
# this long for a rank ends the run; rank 0 evaluating --eval_freq alone must finish well within it
DEFAULT_TIMEOUT_S = 600


def setup(gpu_ids, timeout_s: float = DEFAULT_TIMEOUT_S) -> RunContext:
    """Join the process group when there is one and pick this process's device. gpu_ids: the parsed
    --gpu_ids ([] for the CPU). Under torchrun each process takes gpu_ids[LOCAL_RANK] (or GPU LOCAL_RANK when
    --gpu_ids lists fewer). timeout_s: how long any collective waits for the other ranks (--dist_timeout).
    Every rank's stderr lines are prefixed `[rankN]: `, as torch prefixes its tracebacks."""
    if not launched_by_torchrun():
        device = torch.device(f"cuda:{gpu_ids[0]}") if gpu_ids else torch.device("cpu")
        if gpu_ids:
            torch.cuda.set_device(device)
        return RunContext(device=device)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if gpu_ids:
        gpu = gpu_ids[local_rank] if local_rank < len(gpu_ids) else local_rank
        device = torch.device(f"cuda:{gpu}")
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=timeout_s),
                                **({"device_id": device} if backend == "nccl" else {}))
    if world > 1 and not isinstance(sys.stderr, RankPrefixedStream):
        sys.stderr = RankPrefixedStream(sys.stderr, rank)
    return RunContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


class RankPrefixedStream:
    """stderr of one rank of several: each line starts with `[rankN]: `, so that the ranks' messages can be told
    apart where they meet (torchrun's console, a Slurm log). Lines torch's excepthook has prefixed already
    (tracebacks) are left as they are."""

    def __init__(self, stream, rank: int):
        self.stream, self.prefix, self.at_line_start = stream, f"[rank{rank}]: ", True

    def write(self, text):
        for piece in text.splitlines(keepends=True):
            if self.at_line_start and piece != "\n" and not piece.startswith(self.prefix):
                self.stream.write(self.prefix)
            self.stream.write(piece)
            self.at_line_start = piece.endswith("\n")
        return len(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):  # fileno, isatty, encoding, ... of the real stream
        return getattr(self.stream, name)


def cleanup():
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(index, fn, args, world_size, env):
    os.environ.update(env)
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(world_size))
    fn(*args)


def launch(fn, args, world_size: int):
    """Run fn(*args) in `world_size` local processes that find each other as torchrun's would (a free port on
    127.0.0.1). Returns when all have finished; a failing process fails the launch. Ctrl-C reaches the
    processes from the terminal and SIGTERM is passed on to them: they stop together after saving, while this
    process only waits."""
    import signal

    import torch.multiprocessing as mp
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    context = mp.start_processes(_spawned, args=(fn, args, world_size, env), nprocs=world_size, join=False,
                                 start_method="spawn")

    def pass_on(signum, frame):
        for process in context.processes:
            if process.is_alive() and signum == signal.SIGTERM:
                os.kill(process.pid, signum)
    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not context.join():
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------------
# collectives (no-ops in one process)

def mean_over_ranks(values: dict, ctx: RunContext) -> dict:
    """{name: scalar tensor} averaged over the processes (every rank must call it), in the widest dtype of the
    values and at least fp32 (half-precision losses of AMP are averaged in fp32, a float64 run's in float64)."""
    if not ctx.distributed or not values:
        return values
    names = list(values)  # the same order on every rank: the losses are computed in one order
    dtype = functools.reduce(torch.promote_types, (values[n].dtype for n in names), torch.float32)
    stacked = torch.stack([values[n].detach().to(dtype).reshape(()) for n in names]).to(ctx.device)
    dist.all_reduce(stacked)
    stacked /= ctx.world_size
    return dict(zip(names, stacked.unbind()))


def any_rank(flag: bool, ctx: RunContext) -> bool:
    """True on every rank if `flag` is true on any (every rank must call it): ranks agree on skipping a step
    or on stopping, so that no rank waits for another in a collective."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def agree(stop: bool, error, ctx: RunContext):
    """The step boundary, where every rank says whether it was asked to stop (a signal) and what went wrong on it
    since the last boundary (one line, or None). Returns, the same on every rank, (whether any rank stops,
    [(rank, line) of each rank that failed]). One all-reduce of two flags; the lines travel only when some rank
    failed (every rank must call it)."""
    if not ctx.distributed:
        return stop, [] if error is None else [(ctx.rank, error)]
    flags = torch.tensor([float(stop), float(error is not None)], device=ctx.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    failures = []
    if flags[1].item() > 0:
        failures = [(rank, line) for rank, line in enumerate(gather_objects(error, ctx)) if line is not None]
    return bool(flags[0].item() > 0), failures


def gather_objects(obj, ctx: RunContext) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: RunContext):
    if ctx.distributed:
        dist.barrier()


# ---------------------------------------------------------------------------------------------------------
# a collective that failed: who stopped answering

ROLL_CALL = "scgan_roll_call/"


def is_collective_failure(e: BaseException) -> bool:
    """The error a rank gets when a collective cannot complete: a peer died (gloo: 'Connection closed by peer') or
    did not come within --dist_timeout (gloo: 'Timed out waiting ...ms'; NCCL: DistBackendError)."""
    return isinstance(e, dist.DistError) or (isinstance(e, RuntimeError) and "gloo" in str(e))


def _store():
    get = getattr(dist.distributed_c10d, "_get_default_store", None)
    return get() if get is not None and dist.is_initialized() else None


def leave_word(line: str, ctx: RunContext):
    """A rank that fails inside a step, where the others wait for it in a collective, leaves its line in the
    process group's store before it exits: the roll call of the others reads it."""
    try:
        _store().set(f"{ROLL_CALL}{ctx.rank}", line)
    except Exception:  # no store to reach: the rank's own stderr still has the line
        pass


def stopped_answering(error: BaseException, ctx: RunContext, wait_s: float = 10.0, interrupted=lambda: False):
    """After a collective failed on this rank: a roll call in the store. This rank answers, then waits up to
    `wait_s` seconds (less once `interrupted()`: torchrun stopping the survivors) for the others, which answer
    when their collective fails too. Returns (one line saying which ranks failed, with their line, or stopped
    answering; whether this rank is the lowest that answered, which prints it)."""
    torch_says = next((s for s in str(error).splitlines() if s.strip()), type(error).__name__)
    if torch_says.startswith("["):  # gloo's: '[.../pair.cc:561] Connection closed by peer [addr]:port. This is ...'
        torch_says = torch_says.split("] ", 1)[-1].split(". ", 1)[0]
    answers = {}
    try:
        store = _store()
        store.set(f"{ROLL_CALL}{ctx.rank}", "")
        keys = [f"{ROLL_CALL}{r}" for r in range(ctx.world_size)]
        deadline = time.monotonic() + wait_s
        while True:
            present = [r for r, k in enumerate(keys) if store.check([k])]
            if len(present) == ctx.world_size or time.monotonic() > deadline or interrupted():
                break
            time.sleep(0.1)
        answers = {r: store.get(keys[r]).decode() for r in present}
    except Exception:  # the store is gone too (it lives in rank 0 under `launch`)
        return f"a collective operation failed ({torch_says})", True
    failed = [f"rank {r} failed: {line}" for r, line in sorted(answers.items()) if line]
    silent = [r for r in range(ctx.world_size) if r not in answers]
    if silent:
        failed.append(f"rank{'s' if len(silent) > 1 else ''} {', '.join(map(str, silent))} stopped answering")
    first = min(r for r in answers if not answers[r]) == ctx.rank
    return f"{'; '.join(failed) or 'a collective operation failed'} ({torch_says})", first
