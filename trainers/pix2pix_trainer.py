"""Pix2PixTrainer: optimizers, one generator step, one discriminator step, the learning-rate schedule, and
saving/resuming the whole training state (SPEC §5).

TTUR (default): G at lr/2, D at 2*lr with Adam (beta1, beta2); --no_TTUR: both at lr. The rate is constant
for --niter epochs, then falls linearly over --niter_decay epochs (epoch niter+k runs at
lr * (1 - (k-1)/niter_decay)), computed from the epoch number so a resumed run gets it exactly.
"""
import os

import torch
from torch import nn

from models import create_model, networks
from util import checkpoint


def loss_weights(opt):
    """name -> weight of every loss the model can return; the log shows the weighted terms."""
    weights = {"GAN": 1.0, "GAN_Feat": opt.lambda_feat, "VGG": opt.lambda_vgg, "KLD": opt.lambda_kld,
               "D_Fake": 1.0, "D_real": 1.0}
    if networks.GENERATORS.get(opt.netG).has_semantic_vectors:
        weights["SV"] = opt.lambda_sv
    return weights


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
        sum(losses.values()).backward()
        self.optimizer_G.step()
        self.g_losses = {k: v.detach() for k, v in losses.items()}
        self.generated, self.aux_images = generated, aux_images

    def run_discriminator_one_step(self, data):
        self.optimizer_D.zero_grad(set_to_none=True)
        losses = self.weighted(self.pix2pix_model(data, mode="discriminator"))
        sum(losses.values()).backward()
        self.optimizer_D.step()
        self.d_losses = {k: v.detach() for k, v in losses.items()}

    def get_latest_losses(self):
        return {k: float(v) for k, v in {**self.g_losses, **self.d_losses}.items()}

    def get_latest_generated(self):
        return self.generated

    # ------------------------------------------------------------------------------------------------
    def save(self, label, epoch: int = 0, epoch_iter: int = 0, total_steps: int = 0):
        """The networks under `label`. For 'latest' also the optimizers and counters (the point training goes
        on from: `epoch`, with `epoch_iter` of its images done) and iter.txt, written after the networks so
        the counters never run ahead of the weights. Epoch-labelled saves hold the networks only, as SPADE's."""
        model = self.pix2pix_model_on_one_gpu
        checkpoint.save_network(model.netG, self.folder, label, "G")
        checkpoint.save_network(model.netD, self.folder, label, "D")
        if model.netE is not None:
            checkpoint.save_network(model.netE, self.folder, label, "E")
        if label == "latest":
            checkpoint.save_train_state({"epoch": epoch, "epoch_iter": epoch_iter, "total_steps": total_steps,
                                         "optimizer_G": self.optimizer_G.state_dict(),
                                         "optimizer_D": self.optimizer_D.state_dict()}, self.folder, label)
            checkpoint.write_iter_file(self.folder, epoch, epoch_iter)

    def resume(self):
        """With --continue_train: restore the optimizers and return (epoch, epoch_iter, total_steps) to go on
        from; the networks were loaded by the model. Without a training state (a SPADE checkpoint, or an epoch
        label), start after the epoch it names, with fresh optimizers."""
        checkpoint.remove_stale_temporaries(self.folder)
        state = checkpoint.load_train_state(self.folder, self.opt.which_epoch)
        if state is not None:
            self.optimizer_G.load_state_dict(state["optimizer_G"])
            self.optimizer_D.load_state_dict(state["optimizer_D"])
            return state["epoch"], state["epoch_iter"], state["total_steps"]
        if self.opt.which_epoch.isdigit():
            epoch = int(self.opt.which_epoch) + 1
        elif os.path.isfile(os.path.join(self.folder, "iter.txt")):
            epoch, _ = checkpoint.read_iter_file(self.folder)
        else:
            epoch = 1
        print(f"no training state for --which_epoch {self.opt.which_epoch}: optimizers start afresh at epoch {epoch}")
        return epoch, 0, 0
