"""checkpointing/storage.py: a save is one unit (all files of a step or none), published under SPADE's names in
NVlabs' key layout; reading is weights-only; failures name the folder and keep the previous save."""
import errno
import os
import pickle
import stat

import pytest
import torch

from checkpointing import storage as checkpoint
from checkpointing.storage import CheckpointError


class WritesAMarker:
    """Unpickling this runs os.system, as a crafted checkpoint would."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def nets(value: float):
    return {"G": {"w": torch.full((3,), value)}, "D": {"w": torch.full((2,), value)}}


def save(folder, step, value, labels=("latest",)):
    counters = {"epoch": 1, "epoch_iter": step, "total_steps": step}
    checkpoint.save_unit(str(folder), step, nets(value), {"value": value, **counters}, list(labels), counters)


def test_a_unit_is_committed_whole_and_published_under_spade_names(tmp_path):
    save(tmp_path, 4, 1.0, labels=("latest", "1"))
    unit = checkpoint.unit_path(str(tmp_path), 4)
    manifest = checkpoint.read_manifest(unit)
    assert manifest["save_id"] == 4 and manifest["labels"] == ["latest", "1"]
    assert set(manifest["files"]) == {"net_G.pth", "net_D.pth", "train_state.pth"}
    assert checkpoint.verify_unit(unit) is None
    for name in ("latest_net_G.pth", "latest_net_D.pth", "1_net_G.pth", "1_net_D.pth"):
        assert os.path.samefile(tmp_path / name, os.path.join(unit, "net_" + name.split("_net_")[1]))
    assert not (tmp_path / "latest_train_state.pth").exists()  # the training state stays inside the unit
    assert checkpoint.read_iter_file(str(tmp_path)) == (1, 4)


def test_only_the_two_newest_units_are_kept(tmp_path):
    for step in (2, 4, 6):
        save(tmp_path, step, float(step))
    assert [s for s, _ in checkpoint.list_units(str(tmp_path))] == [6, 4]
    assert torch.equal(torch.load(tmp_path / "latest_net_G.pth", weights_only=True)["w"], torch.full((3,), 6.0))


def test_a_save_that_fails_half_way_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    save(tmp_path, 2, 1.0)
    before = {p: (tmp_path / p).read_bytes() for p in ("latest_net_G.pth", "latest_net_D.pth", "iter.txt")}
    written = []
    real_write = checkpoint._write_file

    def disk_full_after_one_file(path, payload):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        real_write(path, payload)
    monkeypatch.setattr(checkpoint, "_write_file", disk_full_after_one_file)
    with pytest.raises(CheckpointError, match=r"no space left in .*: a save needs about \d+ MiB and \d+ MiB are "
                                              r"free; free some space \(the previous checkpoint is intact\)"):
        save(tmp_path, 4, 2.0)
    assert [s for s, _ in checkpoint.list_units(str(tmp_path))] == [2]
    assert not [f for f in os.listdir(tmp_path / "saves") if f.startswith(".")]
    assert {p: (tmp_path / p).read_bytes() for p in before} == before


def test_resume_falls_back_to_the_previous_complete_unit(tmp_path):
    save(tmp_path, 2, 1.0)
    save(tmp_path, 4, 2.0)
    newest = checkpoint.unit_path(str(tmp_path), 4)
    with open(os.path.join(newest, "train_state.pth"), "r+b") as f:  # truncated by a full disk, say
        f.truncate(10)
    warnings = []
    unit, manifest = checkpoint.newest_complete_unit(str(tmp_path), warn=warnings.append)
    assert manifest["save_id"] == 2 and unit == checkpoint.unit_path(str(tmp_path), 2)
    assert len(warnings) == 1 and "step_000000000004 is incomplete (train_state.pth has 10 bytes" in warnings[0]
    assert "resuming from the previous complete save" in warnings[0]
    # a damaged file of the right size fails its checksum
    save(tmp_path, 6, 3.0)
    other = checkpoint.unit_path(str(tmp_path), 4)
    data = bytearray(open(os.path.join(other, "net_G.pth"), "rb").read())
    data[-30] ^= 0xFF
    open(os.path.join(other, "net_G.pth"), "wb").write(bytes(data))
    assert "net_G.pth does not match its checksum" in checkpoint.verify_unit(other)


def test_a_crafted_pth_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"w": WritesAMarker(marker)}, tmp_path / "latest_net_G.pth")
    with pytest.raises(CheckpointError, match=r"latest_net_G.pth holds Python objects .* refused .*--trust_pickle"):
        checkpoint.load_network(torch.nn.Linear(1, 1), str(tmp_path), "latest", "G")
    assert not marker.exists()


def test_truncated_and_foreign_files_get_one_message(tmp_path):
    (tmp_path / "latest_net_G.pth").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match=r"latest_net_G.pth cannot be read: it is truncated or not a PyTorch"):
        checkpoint.load_network(torch.nn.Linear(1, 1), str(tmp_path), "latest", "G")
    (tmp_path / "iter.txt").write_text("garbage\n")
    with pytest.raises(CheckpointError, match=r"iter.txt should hold two numbers .* found 'garbage\\n'"):
        checkpoint.read_iter_file(str(tmp_path))


def test_files_follow_the_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "UMASK", 0o022)
    checkpoint.atomic_write_bytes(str(tmp_path / "a.txt"), b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "a.txt").st_mode) == 0o644
    monkeypatch.setattr(checkpoint, "UMASK", 0o002)
    checkpoint.atomic_write_bytes(str(tmp_path / "b.txt"), b"x")
    assert stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode) == 0o664  # the group can read a shared folder


def test_an_unwritable_folder_is_named(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", refuse)
    with pytest.raises(CheckpointError, match=rf"cannot write to {tmp_path / 'exp'} \(Permission denied\): make "
                                              r"it writable or choose another folder"):
        checkpoint.check_writable(str(tmp_path / "exp"))


def test_saving_the_same_step_again_replaces_the_unit(tmp_path):
    save(tmp_path, 4, 1.0)
    save(tmp_path, 4, 1.0, labels=("latest", "2"))
    assert [s for s, _ in checkpoint.list_units(str(tmp_path))] == [4]
    assert checkpoint.read_manifest(checkpoint.unit_path(str(tmp_path), 4))["labels"] == ["latest", "2"]
    assert (tmp_path / "2_net_G.pth").is_file()


def test_pickle_refusal_is_about_pickles_only(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"step": 3, "lr": [0.1], "rng": torch.get_rng_state()}, path)  # what our train state holds
    assert checkpoint.safe_load(str(path))["step"] == 3
    path.write_bytes(pickle.dumps(WritesAMarker(tmp_path / "m")))
    with pytest.raises(CheckpointError):
        checkpoint.safe_load(str(path))
    assert not (tmp_path / "m").exists()


def resume_check(folder):
    unit, manifest = checkpoint.newest_complete_unit(str(folder))
    checkpoint.check_published_files(str(folder), unit, manifest)


def test_a_file_copied_over_latest_net_g_is_named_with_the_unit_it_replaced(tmp_path):
    save(tmp_path, 2, 1.0)
    save(tmp_path, 4, 2.0)
    os.remove(tmp_path / "latest_net_G.pth")
    torch.save(nets(7.0)["G"], tmp_path / "latest_net_G.pth")  # SPADE's way to fine-tune: cp G.pth latest_net_G.pth
    with pytest.raises(CheckpointError) as e:
        resume_check(tmp_path)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'latest_net_G.pth'} is not the file of the checkpoint it should link "
                              f"to, {checkpoint.unit_path(str(tmp_path), 4)}/net_G.pth")
    assert "move" in message and f"--init_from {tmp_path / 'latest_net_G.pth'}" in message
    assert "so were" not in message  # latest_net_D.pth is still the unit's


def test_links_a_kill_left_half_updated_and_copies_of_the_same_bytes_are_the_units(tmp_path):
    save(tmp_path, 2, 1.0)
    save(tmp_path, 4, 2.0)
    # killed between two links: latest_net_D.pth still the previous unit's
    os.remove(tmp_path / "latest_net_D.pth")
    os.link(os.path.join(checkpoint.unit_path(str(tmp_path), 2), "net_D.pth"), tmp_path / "latest_net_D.pth")
    # a file system without hard links: a copy, another inode with the same bytes
    os.remove(tmp_path / "latest_net_G.pth")
    (tmp_path / "latest_net_G.pth").write_bytes(open(os.path.join(checkpoint.unit_path(str(tmp_path), 4),
                                                                  "net_G.pth"), "rb").read())
    resume_check(tmp_path)
    os.remove(tmp_path / "latest_net_G.pth")  # a missing file is published again by the resume, not refused
    resume_check(tmp_path)


def test_a_file_copied_in_place_through_the_link_is_named_too(tmp_path):
    save(tmp_path, 2, 1.0)
    save(tmp_path, 4, 2.0)
    newest = checkpoint.unit_path(str(tmp_path), 4)
    with open(tmp_path / "latest_net_G.pth", "wb") as f:  # what `cp G.pth latest_net_G.pth` does: same inode
        torch.save(nets(7.0)["G"], f, _use_new_zipfile_serialization=False)  # as NVlabs' released files are
    assert os.path.samefile(tmp_path / "latest_net_G.pth", os.path.join(newest, "net_G.pth"))
    warnings = []
    unit, manifest = checkpoint.newest_complete_unit(str(tmp_path), warn=warnings.append)
    assert unit == checkpoint.unit_path(str(tmp_path), 2) and "step_000000000004 is incomplete (net_G" in warnings[0]
    with pytest.raises(CheckpointError) as e:
        checkpoint.check_published_files(str(tmp_path), unit, manifest)
    assert str(e.value).startswith(f"{tmp_path / 'latest_net_G.pth'} is not the file of the checkpoint it should "
                                   f"link to, {unit}/net_G.pth (it was written over in place (copied onto, or "
                                   f"damaged), so {newest}/net_G.pth, the same file, changed with it)")


def test_a_truncated_unit_file_and_links_into_a_set_aside_unit_are_not_taken_for_a_copy(tmp_path):
    save(tmp_path, 2, 1.0)
    save(tmp_path, 4, 2.0)
    with open(tmp_path / "latest_net_G.pth", "r+b") as f:  # damage: the newest unit fails, the resume falls back
        f.truncate(100)
    unit, manifest = checkpoint.newest_complete_unit(str(tmp_path), warn=lambda line: None)
    checkpoint.check_published_files(str(tmp_path), unit, manifest)
    # a resume killed after setting the damaged unit aside, before publishing the previous one
    checkpoint.set_aside_units_newer_than(str(tmp_path), 2)
    assert os.path.samefile(tmp_path / "latest_net_D.pth", tmp_path / "saves" / "broken_step_000000000004" /
                            "net_D.pth")
    checkpoint.check_published_files(str(tmp_path), unit, manifest)


def test_init_from_finds_spade_named_siblings(tmp_path):
    for name in ("10_net_G.pth", "10_net_D.pth", "latest_net_E.pth", "G.pth"):
        (tmp_path / name).write_bytes(b"")
    assert checkpoint.init_from_files(str(tmp_path / "10_net_G.pth")) == {"D": str(tmp_path / "10_net_D.pth")}
    assert checkpoint.init_from_files(str(tmp_path / "10_net_G_ema.pth"), ["D"]) == {"D": str(tmp_path /
                                                                                          "10_net_D.pth")}
    assert checkpoint.init_from_files(str(tmp_path / "G.pth")) == {}


def test_an_unreadable_manifest_is_named_and_its_files_are_not_taken_for_copies(tmp_path):
    save(tmp_path, 2, 1.0)
    save(tmp_path, 4, 2.0)
    newest = checkpoint.unit_path(str(tmp_path), 4)
    with open(os.path.join(newest, "manifest.json"), "r+b") as f:
        f.truncate(30)
    warnings = []
    unit, manifest = checkpoint.newest_complete_unit(str(tmp_path), warn=warnings.append)
    assert unit == checkpoint.unit_path(str(tmp_path), 2)
    assert len(warnings) == 1 and f"{newest}/manifest.json cannot be read (JSONDecodeError" in warnings[0]
    assert "cannot be checked against their sizes and sha256 hashes" in warnings[0]
    assert "resuming from the previous complete save" in warnings[0]
    # latest_net_*.pth still link into the unit of the damaged manifest: its own files, not copies
    checkpoint.check_published_files(str(tmp_path), unit, manifest)


def test_a_full_disk_before_any_checkpoint_claims_none(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint.tempfile, "mkstemp", full)
    with pytest.raises(CheckpointError) as e:
        checkpoint.check_writable(str(tmp_path))
    assert str(e.value).startswith(f"no space left in {tmp_path}: ") and "MiB are free" in str(e.value)
    assert "intact" not in str(e.value) and "a save needs" not in str(e.value)
    monkeypatch.undo()
    save(tmp_path, 2, 1.0)
    monkeypatch.setattr(checkpoint, "_write_file", full)
    with pytest.raises(CheckpointError, match=r"a save needs about \d+ MiB .*\(the previous checkpoint is intact\)"):
        save(tmp_path, 4, 2.0)


def test_the_first_tensor_that_does_not_fit_is_named_in_one_line(tmp_path):
    torch.save({"weight": torch.zeros(4, 2), "bias": torch.zeros(4)}, tmp_path / "latest_net_G.pth")
    with pytest.raises(checkpoint.NetworkMismatch) as e:
        checkpoint.load_network(torch.nn.Linear(2, 3), str(tmp_path), "latest", "G")
    assert str(e.value).startswith(f"{tmp_path / 'latest_net_G.pth'} does not fit --netG as these options build it: "
                                   f"the file's weight is (4, 2), the network's (3, 2) (2 tensors differ)")
    assert "\n" not in str(e.value)
    torch.save({"weight": torch.zeros(3, 2)}, tmp_path / "latest_net_G.pth")
    with pytest.raises(checkpoint.NetworkMismatch, match="the file lacks bias"):
        checkpoint.load_network(torch.nn.Linear(2, 3), str(tmp_path), "latest", "G")


def test_a_network_the_new_unit_lacks_loses_its_published_file(tmp_path):
    """An EMA generator of an earlier run (or of a run resumed with --ema_decay 0) is not left as latest_net_G_ema.pth
    beside the new unit's generator, where test.py would take it for the unit's."""
    counters = {"epoch": 1, "epoch_iter": 2, "total_steps": 2}
    checkpoint.save_unit(str(tmp_path), 2, {**nets(1.0), "G_ema": {"w": torch.ones(3)}}, counters, ["latest", "1"],
                         counters)
    assert (tmp_path / "latest_net_G_ema.pth").is_file()
    save(tmp_path, 4, 2.0)
    assert not (tmp_path / "latest_net_G_ema.pth").exists()
    assert (tmp_path / "1_net_G_ema.pth").is_file()  # another label: still the epoch-1 unit's
