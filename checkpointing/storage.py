"""Checkpoint I/O in one place: a save is one unit, every load is safe.

A save is a unit: all files of one training step, or none. It is written into a staging folder, fsynced,
closed by a manifest (each file's size and sha256, the save id = images seen, the counters) written last, and
committed by renaming the folder:

  checkpoints_dir/name/saves/step_000000012345/   net_G.pth, net_D.pth[, net_E.pth, net_G_ema.pth],
                                                  train_state.pth, manifest.json

Only then are SPADE's file names in the experiment folder pointed at it (hard links, a copy where the file
system has none), each replaced atomically: {label}_net_{G,D,E}.pth for 'latest' and epoch labels, and iter.txt.
So `latest_net_G.pth` loads alone in test.py and in NVlabs' scripts, and a resume reads the newest unit whose
manifest checks out, falling back to the previous one with a warning. The two newest complete units are kept.
A resume refuses to go on when a published file is no longer the unit's (a copied-in `latest_net_G.pth`): it
says so instead of ignoring the file (`check_published_files`).

A fresh run with --overwrite first moves the old run's units and the files it wrote besides them (logs, pages,
options) into replaced_run/; the old SPADE-named files stay in place, so test.py keeps working on the old model.
The new run's first complete save publishes over them and removes replaced_run/. A run stopped before that save
leaves replaced_run/ behind, and the next start puts it back (`settle_replaced_run`).

Every .pth is read with torch.load(weights_only=True): tensors, numbers, strings and containers only. A file
that needs full unpickling (which can run code) is refused unless the user passes --trust_pickle. A network
file that does not fit the network the options build is told in one line (NetworkMismatch): by the first
option that differs from the experiment's opt.json where the caller knows the options (`differing_option`),
else by its first tensor that differs.
"""
import errno
import glob
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import tempfile

import torch

UNITS_DIR = "saves"
MANIFEST = "manifest.json"
KEEP_UNITS = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be written or read; the message names the file or folder and what to do."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _current_umask()


# ---------------------------------------------------------------------------------------------------------
# writing

def _fsync_dir(folder: str):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_file(path: str, payload: bytes):
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def explain_write_error(e: OSError, folder: str, needed_bytes: int = 0) -> str:
    """One line for a failed write: which folder, why, and (for a full disk) how much space a save needs and
    whether an earlier checkpoint of the folder is there, untouched."""
    if e.errno == errno.ENOSPC:
        free = shutil.disk_usage(folder).free if os.path.isdir(folder) else 0
        needs = f"a save needs about {needed_bytes / 2**20:.0f} MiB and " if needed_bytes else ""
        intact = " (the previous checkpoint is intact)" if list_units(folder) else ""
        return f"no space left in {folder}: {needs}{free / 2**20:.0f} MiB are free; free some space{intact}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write to {folder} ({e.strerror}): make it writable or choose another folder"
    return f"cannot write to {folder}: {e}"


def atomic_write_bytes(path: str, payload: bytes):
    """Write `payload` to a temporary file beside `path` and rename it over `path` (atomic). The file gets the
    permissions of a plain open() under the user's umask (mkstemp alone would make it 0600)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    except OSError as e:
        raise CheckpointError(explain_write_error(e, folder, len(payload))) from None
    try:
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise CheckpointError(explain_write_error(e, folder, len(payload))) from None
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj, path: str):
    atomic_write_bytes(path, torch_bytes(obj))


def check_writable(folder: str):
    """Fail before training, not at the first save, when the experiment folder cannot be written."""
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".write_check.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.remove(tmp)
    except OSError as e:
        raise CheckpointError(explain_write_error(e, folder)) from None


def network_path(folder: str, label, net_name: str) -> str:
    return os.path.join(folder, f"{label}_net_{net_name}.pth")


def cpu_state_dict(net) -> dict:
    """The network's state dict on the CPU, in the saved key layout (see BaseNetwork's state-dict hook)."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def save_network(net, folder: str, label, net_name: str):
    """One network file on its own, atomically (imported or exported models; training saves units)."""
    atomic_torch_save(cpu_state_dict(net), network_path(folder, label, net_name))


def unit_path(folder: str, save_id: int) -> str:
    return os.path.join(folder, UNITS_DIR, f"step_{save_id:012d}")


def save_unit(folder: str, save_id: int, networks: dict, train_state: dict, labels, counters: dict):
    """Write one checkpoint unit and publish it under SPADE's names.

    networks: name -> state dict ('G', 'D', 'E', 'G_ema'); train_state: optimizers, RNG states, counters;
    labels: e.g. ['latest'] or ['latest', '10'] (epoch files hold the networks, as SPADE's);
    counters: {'epoch', 'epoch_iter', 'total_steps'} of the point training goes on from.
    On any failure the previous complete unit and the published files stay as they were."""
    payloads = {f"net_{name}.pth": torch_bytes(state) for name, state in networks.items()}
    payloads["train_state.pth"] = torch_bytes(train_state)
    needed = sum(len(p) for p in payloads.values())
    units = os.path.join(folder, UNITS_DIR)
    final = unit_path(folder, save_id)
    stage = os.path.join(units, f".{os.path.basename(final)}.tmp")
    try:
        os.makedirs(units, exist_ok=True)
        shutil.rmtree(stage, ignore_errors=True)
        os.makedirs(stage)
        manifest = {"save_id": save_id, "labels": [str(label) for label in labels], **counters, "files": {}}
        for name, payload in payloads.items():
            _write_file(os.path.join(stage, name), payload)
            manifest["files"][name] = {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        _write_file(os.path.join(stage, MANIFEST), json.dumps(manifest, indent=1).encode())
        _fsync_dir(stage)
        if os.path.isdir(final):  # the same step saved again (end of epoch after a periodic save)
            old = os.path.join(units, f".{os.path.basename(final)}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(stage, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(stage, final)
        _fsync_dir(units)
    except OSError as e:
        shutil.rmtree(stage, ignore_errors=True)
        raise CheckpointError(explain_write_error(e, folder, needed)) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    publish_unit(folder, final, manifest)
    prune_units(folder)


def _link_or_copy(src: str, dst: str):
    """Point `dst` at `src`'s content atomically: a hard link (no extra space) or, failing that, a copy."""
    if os.path.isfile(dst) and os.path.samefile(src, dst):
        return  # already published (rename() between two links of one file would do nothing)
    tmp = os.path.join(os.path.dirname(dst), f".{os.path.basename(dst)}.link.tmp")
    if os.path.lexists(tmp):
        os.remove(tmp)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def publish_unit(folder: str, unit: str, manifest: dict):
    """Point SPADE's file names at a complete unit: {label}_net_*.pth and, for 'latest', iter.txt. A network
    the unit does not hold loses its file of those labels (an EMA generator of an earlier run, say), so that
    test.py never takes a stale file for the unit's."""
    try:
        for label in manifest["labels"]:
            for name in manifest["files"]:
                if name.startswith("net_"):
                    _link_or_copy(os.path.join(unit, name), os.path.join(folder, f"{label}_{name}"))
            for stale in glob.glob(os.path.join(folder, f"{glob.escape(str(label))}_net_*.pth")):
                if os.path.basename(stale)[len(f"{label}_"):] not in manifest["files"]:
                    os.remove(stale)
        if "latest" in manifest["labels"]:
            write_iter_file(folder, manifest["epoch"], manifest["epoch_iter"])
    except OSError as e:
        raise CheckpointError(explain_write_error(e, folder)) from None


def list_units(folder: str):
    """Committed units, newest first: [(save_id, path)]."""
    found = []
    for path in glob.glob(os.path.join(folder, UNITS_DIR, "step_*")):
        try:
            found.append((int(os.path.basename(path)[len("step_"):]), path))
        except ValueError:
            continue
    return sorted(found, reverse=True)


def prune_units(folder: str, keep: int = KEEP_UNITS):
    """Keep the `keep` newest complete units; remove older ones and staging folders of killed saves."""
    complete = 0
    for _, path in list_units(folder):
        if complete < keep and verify_unit(path, checksums=False) is None:
            complete += 1
            continue
        if complete >= keep:
            shutil.rmtree(path, ignore_errors=True)
    remove_stale_temporaries(folder)


# what a run writes into the experiment folder besides its checkpoints: util/visualizer.py (loss_log.txt, web/,
# logs/ of --tf_log), trainers/eval_monitor.py (eval_log.jsonl), options/base_options.py (opt.*)
RUN_FILES = ("loss_log.txt", "web", "logs", "eval_log.jsonl", "opt.txt", "opt.json", "opt.pkl")
REPLACED_RUN = "replaced_run"


def _remove(path: str):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def set_aside_run(folder: str) -> bool:
    """--overwrite: move the old run's units and RUN_FILES into replaced_run/, so the new run's log, pages and
    saves start empty; True if there was anything to move. SPADE's files stay until the new run publishes."""
    names = [UNITS_DIR, *RUN_FILES]
    present = [n for n in names if os.path.lexists(os.path.join(folder, n))]
    if not present:
        return False
    aside = os.path.join(folder, REPLACED_RUN)
    os.makedirs(aside)
    for name in present:
        os.replace(os.path.join(folder, name), os.path.join(aside, name))
    _fsync_dir(folder)
    return True


def settle_replaced_run(folder: str, warn=print):
    """A replaced_run/ is left when an --overwrite run stopped before its old run was removed. If the new run
    has a complete unit, only the removal was missing; otherwise the checkpoints in place are the old run's:
    its units and files go back, and the files of the new run, which never saved, go."""
    aside = os.path.join(folder, REPLACED_RUN)
    if not os.path.isdir(aside):
        return
    if any(verify_unit(path, checksums=False) is None for _, path in list_units(folder)):
        shutil.rmtree(aside)
        return
    for name in (UNITS_DIR, *RUN_FILES):
        _remove(os.path.join(folder, name))
    for name in os.listdir(aside):
        os.replace(os.path.join(aside, name), os.path.join(folder, name))
    os.rmdir(aside)
    warn(f"note: an --overwrite run in {folder} stopped before its first complete save; the run it was replacing "
         f"(its checkpoints, loss_log.txt, web/ and options) is back in place")


def remove_replaced_run(folder: str, labels):
    """After the new run's first complete save (published under `labels`): the old run's SPADE files of other
    labels, then replaced_run/ (last: it is what tells a later start that the removal was not finished)."""
    keep = {f"{label}_net_" for label in labels}
    for path in glob.glob(os.path.join(folder, "*_net_*.pth")):
        if not any(os.path.basename(path).startswith(k) for k in keep):
            os.remove(path)
    shutil.rmtree(os.path.join(folder, REPLACED_RUN), ignore_errors=True)


def remove_stale_temporaries(folder: str):
    """Temporary files and staging folders left by a process killed while writing."""
    for tmp in glob.glob(os.path.join(folder, ".*.tmp")):
        os.remove(tmp)
    for tmp in glob.glob(os.path.join(folder, UNITS_DIR, ".*.tmp")) + glob.glob(
            os.path.join(folder, UNITS_DIR, ".*.old")):
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------
# reading

def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(unit: str) -> dict:
    with open(os.path.join(unit, MANIFEST)) as f:
        return json.load(f)


def manifest_entries(unit: str) -> dict:
    """{file name: (bytes, sha256)} from the unit's manifest; CheckpointError naming it when it cannot be read."""
    try:
        files = read_manifest(unit)["files"]
        return {name: (int(entry["bytes"]), str(entry["sha256"])) for name, entry in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{os.path.join(unit, MANIFEST)} cannot be read ({type(e).__name__}: {e}), so the "
                              f"files of that save cannot be checked against their sizes and sha256 hashes") from None


def verify_unit(unit: str, checksums: bool = True):
    """None if the unit is complete (manifest readable, every file of its size and checksum), else why not, in
    one phrase naming the unit or its manifest."""
    try:
        entries = manifest_entries(unit)
    except CheckpointError as e:
        return str(e)
    for name, (size, digest) in entries.items():
        path = os.path.join(unit, name)
        if not os.path.isfile(path):
            return f"checkpoint {unit} is incomplete ({name} is missing)"
        if os.path.getsize(path) != size:
            return (f"checkpoint {unit} is incomplete ({name} has {os.path.getsize(path)} bytes, the manifest says "
                    f"{size})")
        if checksums and _sha256(path) != digest:
            return f"checkpoint {unit} is incomplete ({name} does not match its checksum)"
    return None


def newest_complete_unit(folder: str, warn=print):
    """(path, manifest) of the newest unit that checks out, or None (`unresumable` then says why). Each newer
    unit skipped for an older one gets one line."""
    skipped = []
    for _, path in list_units(folder):
        problem = verify_unit(path)
        if problem is None:
            for why in skipped:
                warn(f"warning: {why}; resuming from the previous complete save {path}")
            return path, read_manifest(path)
        skipped.append(problem)
    return None


def unresumable(folder: str) -> str:
    """Why --continue_train has no unit of `folder` to resume, and the ways on, in one line (the newest unit's
    problem; newest_complete_unit found none complete)."""
    (_, newest), *_ = list_units(folder)
    why = verify_unit(newest)
    earlier = "no earlier complete save exists" if len(list_units(folder)) == 1 else "no earlier save is complete"
    fresh = "start afresh with --overwrite"
    own = os.path.join(newest, "net_G.pth")
    if why.startswith(os.path.join(newest, MANIFEST)) and os.path.isfile(own):  # the network files may be whole
        published = os.path.join(folder, "latest_net_G.pth")
        generator = published if os.path.isfile(published) and os.path.samefile(published, own) else own
        fresh = (f"to start from its generator anyway, unchecked, with fresh optimizers at epoch 1: python train.py "
                 f"--name NEW_NAME --init_from {generator} (or, in this folder, --overwrite instead of "
                 f"--continue_train); or {fresh}")
    return f"--continue_train: {why}, and {earlier}: {fresh}"


def _same_file_as(published: str, name: str, units):
    """The unit of `units` whose file `name` is `published` itself (a hard link), or None."""
    for unit in units:
        own = os.path.join(unit, name)
        if os.path.isfile(own) and os.path.samefile(published, own):
            return unit
    return None


def _holds_a_units_bytes(published: str, name: str, units) -> bool:
    """`published` has the size and sha256 that the manifest of one of `units` records for `name`."""
    size, digest = os.path.getsize(published), None
    for unit in units:
        try:
            entry = read_manifest(unit)["files"][name]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if entry["bytes"] == size:
            digest = digest or _sha256(published)
            if digest == entry["sha256"]:
                return True
    return False


def _manifest_unreadable(unit: str) -> bool:
    try:
        manifest_entries(unit)
    except CheckpointError:
        return True
    return False


def _readable(path: str) -> bool:
    """A file torch.load reads, weights only: memory-mapped (little is read) or, for the legacy format of
    NVlabs' released files, which cannot be mapped, whole."""
    for mmap in (True, False):
        try:
            torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            return True
        except Exception:
            continue
    return False


def check_published_files(folder: str, unit, manifest):
    """Before a resume from `unit` (as newest_complete_unit returned it, its checksums verified; None when no
    unit is complete): every latest_net_*.pth of `folder` must still hold what a save wrote. It is the unit's
    own file, or has the size and sha256 of that file in the manifest of any unit, broken_step_* included (a
    kill between two links leaves some pointing at the previous unit, a resume killed before it published
    leaves them pointing into a unit it set aside, and links fall back to copies; the resume repairs all three).

    A file copied over one, SPADE's way to fine-tune, would otherwise be ignored; `cp` onto the hard link even
    writes into the newest unit, which then fails its checksum. Both are refused, naming the file, the unit it
    should link to and the ways on, so the two never mix. An unreadable file written into its unit (truncated,
    say) is damage, not a replacement: the unit fails its checks and the resume falls back, as before."""
    units = [path for path in glob.glob(os.path.join(folder, UNITS_DIR, "*step_*")) if os.path.isdir(path)]
    replaced = []
    for published in sorted(glob.glob(os.path.join(folder, "latest_net_*.pth"))):
        name = os.path.basename(published)[len("latest_"):]
        if unit is not None and (name not in manifest["files"] or _same_file_as(published, name, [unit])):
            continue  # not the unit's to publish, or the unit's own verified file
        if _holds_a_units_bytes(published, name, units):
            continue
        through = _same_file_as(published, name, units)
        if through is not None and _manifest_unreadable(through):
            continue  # the unit's own file; its manifest is what is damaged, and the resume says so
        if through is None or _readable(published):
            replaced.append((name, through))
    if not replaced:
        return
    (name, through), others = replaced[0], replaced[1:]
    published = os.path.join(folder, f"latest_{name}")
    how = (f"written over in place (copied onto, or damaged), so {os.path.join(through, name)}, the same file, "
           f"changed with it" if through else "replaced after that save")
    others = "; so were " + ", ".join(f"latest_{other}" for other, _ in others) if others else ""
    fresh = (f"python train.py --name NEW_NAME --init_from {published} (or, in this folder, --overwrite instead of "
             f"--continue_train)")
    if unit is None:
        raise CheckpointError(f"{published} was {how}{others}, and no complete checkpoint is left to resume. To "
                              f"start from the file with fresh optimizers at epoch 1: {fresh}")
    raise CheckpointError(
        f"{published} is not the file of the checkpoint it should link to, {os.path.join(unit, name)} (it was "
        f"{how}{others}), and --continue_train never mixes the two. To resume the checkpoint, move {published} "
        f"out of the folder; to start from the file with fresh optimizers at epoch 1: {fresh}")


def init_from_files(path: str, names=("D", "E")) -> dict:
    """--init_from `{label}_net_G.pth` (or _G_ema.pth) -> {name: `{label}_net_{name}.pth`} for the networks of
    `names` that lie beside it: the files NVlabs SPADE's --continue_train would load with it. {} for a file
    not named that way."""
    found = re.fullmatch(r"(.*)_net_G(_ema)?\.pth", os.path.basename(path))
    if found is None:
        return {}
    siblings = {name: os.path.join(os.path.dirname(path), f"{found.group(1)}_net_{name}.pth") for name in names}
    return {name: sibling for name, sibling in siblings.items() if os.path.isfile(sibling)}


def set_aside_units_newer_than(folder: str, save_id: int):
    """Move incomplete units newer than the one resumed from to saves/broken_step_* (kept for inspection,
    never read again), so that later saves of the resumed run are the newest."""
    for newer_id, path in list_units(folder):
        if newer_id > save_id:
            os.replace(path, os.path.join(os.path.dirname(path), "broken_" + os.path.basename(path)))


def safe_load(path: str, trust_pickle: bool = False):
    """torch.load with weights_only=True. A file that needs full unpickling is refused (it can run code)
    unless `trust_pickle`; a truncated or foreign file gets one message naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
            what = f" ({found.group(1)})" if found else ""
            raise CheckpointError(
                f"{path} holds Python objects{what} that only full unpickling can read, and unpickling can run code: "
                f"torch.load(weights_only=True) refused it. Pass --trust_pickle only if you trust where the file "
                f"came from") from None
    except FileNotFoundError:
        raise
    except Exception as e:
        raise CheckpointError(f"{path} cannot be read: it is truncated or not a PyTorch file "
                              f"({type(e).__name__}: {str(e)[:200]})") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path} cannot be read ({type(e).__name__}: {str(e)[:200]})") from None


def first_nonfinite(state):
    """(the first floating tensor of a state dict that holds NaN/Inf, how many do), or None."""
    if not isinstance(state, dict):
        return None
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    return (bad[0], len(bad)) if bad else None


def read_state_dict(path: str, option: str, trust_pickle: bool = False) -> dict:
    """A state dict (names -> tensors) from a file a user named with `option`, read by `safe_load`; every
    refusal names the option and the file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{option} {path}: no such file")
    try:
        state = safe_load(path, trust_pickle)
    except CheckpointError as e:
        raise CheckpointError(f"{option} {e}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{option} {path} is not a state dict (a mapping of names to tensors) but a "
                              f"{type(state).__name__}; pass the file saved from the network itself")
    return dict(state)


class NetworkMismatch(CheckpointError):
    """A network file whose tensors do not fit the network the options build. `path`, `net_name` ('G', 'G_ema',
    'D', 'E') and `difference` (the first tensor that differs, in words) let a caller that knows the options
    name the option instead (`differing_option`)."""

    def __init__(self, path, net_name, difference, hint):
        self.path, self.net_name, self.difference = path, net_name, difference
        super().__init__(f"{self.what()}: {difference} ({hint})")

    def what(self) -> str:
        return f"{self.path} does not fit --net{self.net_name.split('_')[0]} as these options build it"

    def told_by(self, option: str, advice: str) -> str:
        """The one line with the first option that differs (`differing_option`) in place of the tensor."""
        return f"{self.what()}: {option}, the options the file was trained with; {advice}"


def _shape(tensor) -> str:
    return "(" + ", ".join(str(n) for n in tensor.shape) + ")"


def first_difference(expected: dict, state: dict) -> str:
    """The first tensor of a network's state dict (`expected`) that a file's (`state`, in the same key layout)
    does not match, in words: 'the file's fc.weight is (128, 9, 3, 3), the network's (256, 9, 3, 3) (38 tensors
    differ)', or the keys one has and the other lacks. '' when they match."""
    resized = [k for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if resized:
        k = resized[0]
        return (f"the file's {k} is {_shape(state[k])}, the network's {_shape(expected[k])}"
                f"{f' ({len(resized)} tensors differ)' if len(resized) > 1 else ''}")
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]

    def some(keys):
        return keys[0] + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")
    parts = ([f"the file lacks {some(missing)}"] if missing else []) + (
        [f"holds {some(extra)}, which the network does not have"] if extra else [])
    return " and ".join(parts)


def load_state_into(net, state: dict, path: str, net_name: str, strict: bool = True, hint: str = None):
    """`hint`: what to check when the file does not fit (by default: the experiment's saved options). A file
    that does not fit raises NetworkMismatch, one line naming its first tensor that differs."""
    hint = hint or ("were the same options used for training? --load_from_opt_file takes them from the "
                    "experiment's opt.json")
    try:
        net.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        # the network's state dict in the saved key layout, as the file's (BaseNetwork's hooks)
        difference = first_difference(net.state_dict(), state) or str(e).strip().splitlines()[-1].strip()
        raise NetworkMismatch(path, net_name, difference, hint) from None
    return net


# which registry builds each network file, and the option that chooses from it
BUILT_BY = {"G": ("GENERATORS", "netG"), "G_ema": ("GENERATORS", "netG"), "D": ("DISCRIMINATORS", "netD"),
            "E": ("ENCODERS", "netE")}
# options derived from others at parsing (options/base_options.py): a difference is told by its sources
DERIVED_FROM = {"semantic_nc": ("label_nc", "contain_dontcare_label", "no_instance")}


class _ReadRecorder:
    """Stands for an options namespace and notes the names read from it, in order."""

    def __init__(self, opt):
        self.__dict__.update(_opt=opt, _read=[])

    def __getattr__(self, name):
        value = getattr(self.__dict__["_opt"], name)
        if name not in self._read:
            self._read.append(name)
        return value


class _Constructed(Exception):
    """The builder reached the network's constructor: every option it reads has been read."""


def _stop_at_constructor(self, *args, **kwargs):
    raise _Constructed


def options_read(opt, net_name: str) -> list:
    """The names of the options that the builder of network `net_name` reads (its registry entry's `from_opt`,
    the only reader of options in networks), in the order it reads them. The builder runs up to the network's
    constructor, so nothing is built; what it read before an error counts."""
    from models import networks  # checkpointing sits below models only for this diagnosis
    registry, choice = BUILT_BY[net_name]
    recorder = _ReadRecorder(opt)
    try:
        cls = getattr(networks, registry).get(getattr(recorder, choice))
        type(cls.__name__, (cls,), {"__init__": _stop_at_constructor}).from_opt(recorder)
    except Exception:
        pass
    return recorder._read


def differing_option(opt, net_name: str, saved_path: str):
    """'--ngf 32 vs 16 in checkpoints/NAME/opt.json': the first option that the builder of `net_name` reads
    whose value in `opt` is not the one saved in `saved_path` (the options the experiment's files were trained
    with), or None (none differs, or the file cannot be read)."""
    try:
        with open(saved_path) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict):
        return None
    for name in options_read(opt, net_name):
        for option in DERIVED_FROM.get(name, (name,)):
            if option in saved and hasattr(opt, option):
                now = json.loads(json.dumps(getattr(opt, option)))  # as it would be saved
                if now != saved[option]:
                    return f"--{option} {_value(now)} vs {_value(saved[option])} in {saved_path}"
    return None


def _value(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def existing_network_path(folder: str, label, net_name: str) -> str:
    """network_path(...) of a file that is there; else CheckpointError listing the folder's .pth files."""
    path = network_path(folder, label, net_name)
    if not os.path.isfile(path):
        listing = ", ".join(sorted(f for f in os.listdir(folder) if f.endswith(".pth"))) if os.path.isdir(
            folder) else "nothing (the folder does not exist)"
        raise CheckpointError(f"checkpoint {path} not found (--name, --checkpoints_dir and --which_epoch choose "
                              f"it; the folder holds: {listing or 'no .pth files'})")
    return path


def load_network(net, folder: str, label, net_name: str, strict: bool = True, trust_pickle: bool = False):
    path = existing_network_path(folder, label, net_name)
    return load_state_into(net, safe_load(path, trust_pickle), path, net_name, strict)


def write_iter_file(folder: str, epoch: int, epoch_iter: int):
    atomic_write_bytes(os.path.join(folder, "iter.txt"), f"{epoch}\n{epoch_iter}\n".encode())


def read_iter_file(folder: str):
    """(epoch, images done in it) from SPADE's iter.txt."""
    path = os.path.join(folder, "iter.txt")
    with open(path) as f:
        text = f.read()
    try:
        values = [int(float(x)) for x in text.split()]
        epoch, epoch_iter = values[0], values[1]
    except (ValueError, IndexError):
        raise CheckpointError(f"{path} should hold two numbers (epoch and images done in it), found "
                              f"{text[:40]!r}: fix or delete it") from None
    if epoch < 1 or epoch_iter < 0:
        raise CheckpointError(f"{path}: epoch {epoch}, image {epoch_iter} is not a point training can go on "
                              f"from: fix or delete it")
    return epoch, epoch_iter
