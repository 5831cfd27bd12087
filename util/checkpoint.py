"""Checkpoint I/O in one place. Every file is written to a temporary name in the same folder and renamed
over the final name (os.replace is atomic), so a crash or a SIGKILL never leaves a half-written file.

Layout (SPADE's names, so released files stay interchangeable), in checkpoints_dir/name/:
  {label}_net_G.pth, {label}_net_D.pth, {label}_net_E.pth   network state dicts (label: latest or an epoch)
  {label}_train_state.pth                                      optimizers, epoch, iteration, learning rates
  iter.txt                                                     epoch and iteration (images), as SPADE writes it
"""
import glob
import io
import os
import tempfile

import torch


def atomic_write_bytes(path: str, payload: bytes):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_torch_save(obj, path: str):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def remove_stale_temporaries(folder: str):
    """Temporary files left by a process killed while writing."""
    for tmp in glob.glob(os.path.join(folder, ".*.tmp")):
        os.remove(tmp)


def network_path(folder: str, label, net_name: str) -> str:
    return os.path.join(folder, f"{label}_net_{net_name}.pth")


def save_network(net, folder: str, label, net_name: str):
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    atomic_torch_save(state, network_path(folder, label, net_name))


def load_network(net, folder: str, label, net_name: str, strict: bool = True):
    path = network_path(folder, label, net_name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} not found (--name, --checkpoints_dir and --which_epoch "
                                f"choose it; the folder holds: {', '.join(sorted(os.listdir(folder))) if os.path.isdir(folder) else 'nothing'})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"checkpoint {path} cannot be read ({e})") from None
    try:
        net.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        raise ValueError(f"checkpoint {path} does not fit --net{net_name} as the options build it "
                         f"(were the same options used for training?):\n{e}") from None
    return net


def write_iter_file(folder: str, epoch: int, epoch_iter: int):
    atomic_write_bytes(os.path.join(folder, "iter.txt"), f"{epoch}\n{epoch_iter}\n".encode())


def read_iter_file(folder: str):
    path = os.path.join(folder, "iter.txt")
    with open(path) as f:
        values = [int(float(x)) for x in f.read().split()]
    return values[0], values[1]


def train_state_path(folder: str, label) -> str:
    return os.path.join(folder, f"{label}_train_state.pth")


def save_train_state(state: dict, folder: str, label):
    atomic_torch_save(state, train_state_path(folder, label))


def load_train_state(folder: str, label):
    path = train_state_path(folder, label)
    if not os.path.isfile(path):
        return None
    return torch.load(path, map_location="cpu", weights_only=False)
