"""Pix2PixTrainer: optimizers, one generator step, one discriminator step, the learning-rate schedule, the
guard against non-finite losses, and saving/resuming the whole training state as one checkpoint unit
(SPEC §5, util/checkpoint.py).

TTUR (default): G at lr/2, D at 2*lr with Adam (beta1, beta2); --no_TTUR: both at lr. The rate is constant
for --niter epochs, then falls linearly over --niter_decay epochs (epoch niter+k runs at
lr * (1 - (k-1)/niter_decay)), computed from the epoch number so a resumed run gets it exactly.

A step whose summed loss is NaN or Inf is skipped (no update) and counted; --max_nonfinite_steps of them in a
row stop training with NonFiniteError, and weights that are not finite are never saved.
"""
import glob
import os

import torch
from torch import nn

from models import create_model, networks
from util import checkpoint
from util.checkpoint import CheckpointError


class NonFiniteError(RuntimeError):
    """Training cannot go on: losses or weights are NaN/Inf. The last complete checkpoint is untouched."""


def loss_weights(opt):
    """name -> weight of every loss the model can return; the log shows the weighted terms."""
    weights = {"GAN": 1.0, "GAN_Feat": opt.lambda_feat, "VGG": opt.lambda_vgg, "KLD": opt.lambda_kld,
               "D_Fake": 1.0, "D_real": 1.0}
    if networks.GENERATORS.get(opt.netG).has_semantic_vectors:
        weights["SV"] = opt.lambda_sv
    return weights


def existing_checkpoints(folder: str):
    """The checkpoint files of an experiment folder: SPADE's *_net_G.pth and our saves/ units."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(folder, "*_net_G.pth"))) + [
        f"saves/{os.path.basename(p)}" for _, p in checkpoint.list_units(folder)]


def check_fresh_start(opt):
    """A run without --continue_train must not replace a trained model unless --overwrite says so."""
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    found = existing_checkpoints(folder)
    if found and not opt.continue_train and not opt.overwrite:
        raise CheckpointError(
            f"{folder} already holds a trained model ({', '.join(found[:4])}{' ...' if len(found) > 4 else ''}): "
            f"pass --continue_train to resume it, --overwrite to start afresh over it, or choose another --name")


class Pix2PixTrainer:
    def __init__(self, opt):
        self.opt = opt
        self.pix2pix_model = create_model(opt)
        self.pix2pix_model_on_one_gpu = self.pix2pix_model
        if len(opt.gpu_ids) > 1:
            self.pix2pix_model = nn.DataParallel(self.pix2pix_model, device_ids=opt.gpu_ids)
        self.folder = os.path.join(opt.checkpoints_dir, opt.name)
        self.weights = loss_weights(opt)
        self.g_losses, self.d_losses = {}, {}
        self.generated, self.aux_images = None, {}
        self.nonfinite_in_a_row, self.nonfinite_total = 0, 0
        self.last_finite_losses = {}
        self.last_save_id = None
        # after a fresh start with --overwrite, the old run's files go once the new run has a complete save
        self.replace_old_run = bool(opt.overwrite and not opt.continue_train and existing_checkpoints(self.folder))
        if opt.isTrain:
            self.optimizer_G, self.optimizer_D = self.create_optimizers(opt)

    # ------------------------------------------------------------------------------------------------
    def generator_parameters(self):
        model = self.pix2pix_model_on_one_gpu
        params = list(model.netG.parameters())
        if model.netE is not None:
            params += list(model.netE.parameters())
        return params

    def create_optimizers(self, opt):
        optimizer_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt.optimizer]
        lr_G, lr_D = self.learning_rates(1)
        betas = (opt.beta1, opt.beta2)
        optimizer_G = optimizer_cls(self.generator_parameters(), lr=lr_G, betas=betas)
        optimizer_D = optimizer_cls(self.pix2pix_model_on_one_gpu.netD.parameters(), lr=lr_D, betas=betas)
        return optimizer_G, optimizer_D

    def learning_rates(self, epoch: int):
        """(G lr, D lr) used during `epoch` (1-based)."""
        opt = self.opt
        lr = opt.lr
        if epoch > opt.niter and opt.niter_decay > 0:
            lr = opt.lr * max(0.0, 1.0 - (epoch - opt.niter - 1) / opt.niter_decay)
        return (lr, lr) if opt.no_TTUR else (lr / 2, lr * 2)

    def update_learning_rate(self, epoch: int):
        lr_G, lr_D = self.learning_rates(epoch)
        for group in self.optimizer_G.param_groups:
            group["lr"] = lr_G
        for group in self.optimizer_D.param_groups:
            group["lr"] = lr_D
        return lr_G, lr_D

    # ------------------------------------------------------------------------------------------------
    def weighted(self, losses):
        # .mean() merges the copies DataParallel gathers from several GPUs
        return {name: value.mean() * self.weights[name] for name, value in losses.items()}

    def run_generator_one_step(self, data):
        self.optimizer_G.zero_grad(set_to_none=True)
        losses, generated, aux_images = self.pix2pix_model(data, mode="generator")
        losses = self.weighted(losses)
        self.generated, self.aux_images = generated, aux_images
        if self.finite(losses, "G"):
            sum(losses.values()).backward()
            self.optimizer_G.step()
        self.g_losses = {k: v.detach() for k, v in losses.items()}

    def run_discriminator_one_step(self, data):
        self.optimizer_D.zero_grad(set_to_none=True)
        losses = self.weighted(self.pix2pix_model(data, mode="discriminator"))
        if self.finite(losses, "D"):
            sum(losses.values()).backward()
            self.optimizer_D.step()
        self.d_losses = {k: v.detach() for k, v in losses.items()}

    def finite(self, losses, which: str) -> bool:
        """One isfinite on the summed loss. A non-finite step is skipped (its update is not applied) and
        counted; --max_nonfinite_steps in a row raise NonFiniteError."""
        if bool(torch.isfinite(sum(losses.values()))):
            self.nonfinite_in_a_row = 0
            self.last_finite_losses.update({k: v.detach() for k, v in losses.items()})
            return True
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        values = ", ".join(f"{k}: {float(v.detach()):.3f}" for k, v in losses.items())
        print(f"warning: non-finite {which} loss ({values}): update skipped ({self.nonfinite_in_a_row} in a row, "
              f"{self.nonfinite_total} in all)")
        if self.nonfinite_in_a_row >= self.opt.max_nonfinite_steps:
            last = ", ".join(f"{k}: {float(v):.3f}" for k, v in self.last_finite_losses.items()) or "none yet"
            raise NonFiniteError(
                f"{self.nonfinite_in_a_row} steps in a row had a NaN/Inf loss (--max_nonfinite_steps "
                f"{self.opt.max_nonfinite_steps}); last finite losses: {last}. Nothing was saved: the last "
                f"complete checkpoint is intact. Lower --lr, or check the data and the weights")
        return False

    def get_latest_losses(self):
        return {k: float(v) for k, v in {**self.g_losses, **self.d_losses}.items()}

    def get_latest_generated(self):
        return self.generated

    # ------------------------------------------------------------------------------------------------
    def networks_to_save(self):
        model = self.pix2pix_model_on_one_gpu
        nets = {"G": model.netG, "D": model.netD}
        if model.netE is not None:
            nets["E"] = model.netE
        return nets

    def save(self, epoch: int, epoch_iter: int, total_steps: int, epoch_label=None):
        """One checkpoint unit at the point training goes on from (`epoch`, with `epoch_iter` of its images
        done; `total_steps` images seen, the save id): the networks, the optimizers and the RNG state, published
        as latest_net_*.pth (and {epoch_label}_net_*.pth, as SPADE's epoch files). Non-finite weights are
        never saved. A save at the step of the previous one replaces that unit."""
        nets = self.networks_to_save()
        for name, net in nets.items():
            for key, value in net.state_dict().items():
                if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise NonFiniteError(f"net{name} holds NaN/Inf values ({key}): not saved, the last complete "
                                         f"checkpoint is intact. Lower --lr, or check the data and the weights")
        labels = ["latest"] + ([str(epoch_label)] if epoch_label is not None else [])
        counters = {"epoch": epoch, "epoch_iter": epoch_iter, "total_steps": total_steps}
        train_state = {**counters, "optimizer_G": self.optimizer_G.state_dict(),
                       "optimizer_D": self.optimizer_D.state_dict(), "rng_torch": torch.get_rng_state(),
                       "nonfinite_in_a_row": self.nonfinite_in_a_row, "nonfinite_total": self.nonfinite_total}
        if torch.cuda.is_available():
            train_state["rng_cuda"] = torch.cuda.get_rng_state_all()
        checkpoint.save_unit(self.folder, total_steps, {n: checkpoint.cpu_state_dict(net) for n, net in nets.items()},
                             train_state, labels, counters)
        self.last_save_id = total_steps
        if self.replace_old_run:
            self.remove_old_run(labels)

    def remove_old_run(self, labels):
        """--overwrite: the new run has a complete save, so the old run's units and network files go."""
        checkpoint.remove_units(self.folder, except_id=self.last_save_id)
        keep = {f"{label}_net_" for label in labels}
        for path in glob.glob(os.path.join(self.folder, "*_net_*.pth")):
            if not any(os.path.basename(path).startswith(k) for k in keep):
                os.remove(path)
        self.replace_old_run = False

    def resume(self):
        """With --continue_train: load the networks, optimizers, RNG state and counters and return (epoch,
        epoch_iter, total_steps) to go on from. 'latest' reads the newest complete unit under saves/ (an
        incomplete newer one is set aside with a warning); an epoch label, or a folder of NVlabs SPADE (no
        units), loads SPADE's network files and starts the optimizers afresh."""
        opt, folder = self.opt, self.folder
        checkpoint.remove_stale_temporaries(folder)
        nets = self.networks_to_save()
        if opt.which_epoch == "latest" and checkpoint.list_units(folder):
            found = checkpoint.newest_complete_unit(folder)
            if found is None:
                raise CheckpointError(f"no complete checkpoint under {os.path.join(folder, checkpoint.UNITS_DIR)} "
                                      f"(see the warnings above): start afresh with --overwrite")
            unit, manifest = found
            checkpoint.set_aside_units_newer_than(folder, manifest["save_id"])
            for name, net in nets.items():
                path = os.path.join(unit, f"net_{name}.pth")
                checkpoint.load_state_into(net, checkpoint.safe_load(path, opt.trust_pickle), path, name)
            state = checkpoint.safe_load(os.path.join(unit, "train_state.pth"), opt.trust_pickle)
            self.optimizer_G.load_state_dict(state["optimizer_G"])
            self.optimizer_D.load_state_dict(state["optimizer_D"])
            torch.set_rng_state(state["rng_torch"])
            if "rng_cuda" in state and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng_cuda"])
            self.nonfinite_in_a_row, self.nonfinite_total = state["nonfinite_in_a_row"], state["nonfinite_total"]
            checkpoint.publish_unit(folder, unit, manifest)  # repairs links a kill left half-updated
            self.last_save_id = manifest["save_id"]
            return state["epoch"], state["epoch_iter"], state["total_steps"]

        for name, net in nets.items():
            checkpoint.load_network(net, folder, opt.which_epoch, name, trust_pickle=opt.trust_pickle)
        if opt.which_epoch.isdigit():
            epoch = int(opt.which_epoch) + 1
        elif os.path.isfile(os.path.join(folder, "iter.txt")):
            epoch, _ = checkpoint.read_iter_file(folder)
        else:
            epoch = 1
        print(f"no training state for --which_epoch {opt.which_epoch} (SPADE's files hold the networks only): "
              f"optimizers start afresh at epoch {epoch}")
        return epoch, 0, 0
