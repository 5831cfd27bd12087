"""Pix2PixTrainer: it owns the training step. It holds netG, netD (and netE, netG_ema), each
wrapped in its own DistributedDataParallel when the run has several processes; runs the generator and
discriminator passes under autocast (--amp bf16|fp16, with a GradScaler for fp16); weights the named losses;
keeps the EMA generator; guards against non-finite losses; and saves/resumes the whole training state as one
checkpoint unit (checkpointing/storage.py). It reads one RunContext (rank, world size, device) for all of this.

TTUR (default): G at lr/2, D at 2*lr with Adam (beta1, beta2); --no_TTUR: both at lr. The rate is constant
for --niter epochs, then falls linearly over --niter_decay epochs (epoch niter+k runs at
lr * (1 - (k-1)/niter_decay)), computed from the epoch number so a resumed run gets it exactly.

A step whose summed loss is NaN or Inf, or after whose forward passes a buffer (a batch norm's running
statistics) is, is skipped (no update, the buffers of before the step put back) and counted;
--max_nonfinite_steps of them in a row stop training with NonFiniteError, and weights that are not finite are
never saved.
"""
import contextlib
import copy
import glob
import os

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from checkpointing import storage as checkpoint
from checkpointing.storage import CheckpointError
from models import create_model, networks
from models.networks.sync_batchnorm import convert_sync_batchnorm
from util import distributed
from util.distributed import RunContext

# losses summed (not averaged) over the batch: under DDP each rank's share is scaled back to the whole batch
BATCH_SUM_LOSSES = ("KLD",)


class NonFiniteError(RuntimeError):
    """Training cannot go on: losses or weights are NaN/Inf. The last complete checkpoint is untouched."""


def loss_weights(opt, extra_criteria=None):
    """name -> weight of every loss the model can return (the generator's own terms with theirs); the log
    shows the weighted terms."""
    weights = {"GAN": 1.0, "GAN_Feat": opt.lambda_feat, "VGG": opt.lambda_vgg, "KLD": opt.lambda_kld,
               "D_Fake": 1.0, "D_real": 1.0}
    weights.update(networks.DISCRIMINATORS.get(opt.netD).extra_loss_weights(opt))  # OASIS: D_LabelMix
    weights.update({name: weight for name, (_, _, weight) in (extra_criteria or {}).items()})
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
    def __init__(self, opt, ctx: RunContext = None):
        self.opt = opt
        self.ctx = ctx or RunContext(device=torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids
                                     else torch.device("cpu"))
        self.model = create_model(opt, device=self.ctx.device)
        self.pix2pix_model = self.model  # SPADE's name for it
        model = self.model
        if opt.init_from:
            self.load_init_from(opt.init_from)
        if opt.channels_last:
            for net in (model.netG, model.netD, model.netE):
                if net is not None:
                    networks.to_channels_last(net)
        if self.ctx.distributed and self.ctx.device.type == "cuda":
            # every `syncbatch` norm becomes torch.nn.SyncBatchNorm; on the CPU (gloo) SyncBatchNorm2d synchronizes
            # its statistics itself, and plain `batch` norms stay per-GPU
            model.netG, model.netD, model.netE = (convert_sync_batchnorm(n) if n is not None else None
                                                  for n in (model.netG, model.netD, model.netE))
        unused = set(model.netG.extra_images) - {key for key, _, _ in model.extra_criteria.values()}
        self.netG = self.wrap(model.netG, find_unused_parameters=bool(unused))
        self.netD = self.wrap(model.netD)
        self.netE = self.wrap(model.netE) if model.netE is not None else None
        # after wrapping: DDP has given every rank rank 0's weights
        self.netG_ema = self.make_ema(model.netG) if opt.ema_decay > 0 else None
        self.ema_batchnorm_fresh = False  # refreshed since the last EMA update (the evaluation, then the save)
        self.amp_dtype = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[opt.amp]
        self.scaler_G = torch.amp.GradScaler(self.ctx.device.type, enabled=opt.amp == "fp16")
        self.scaler_D = torch.amp.GradScaler(self.ctx.device.type, enabled=opt.amp == "fp16")

        self.folder = os.path.join(opt.checkpoints_dir, opt.name)
        self.weights = loss_weights(opt, model.extra_criteria)
        self.g_losses, self.d_losses = {}, {}
        self.generated, self.aux_images = None, {}
        self.nonfinite_in_a_row, self.nonfinite_total = 0, 0
        self.last_finite_losses = {}
        self.last_save_id = None
        self.resumed_unit = None  # (path, manifest) of the unit resume() read, published by publish_resumed()
        # --overwrite: the old run waits in replaced_run/ and goes once the new run has a complete save; its log,
        # pages and saves are set aside before the visualizer or the evaluation opens them, so the new run's start
        # empty
        self.replace_old_run = False
        if self.ctx.is_main and os.path.isdir(self.folder):
            checkpoint.settle_replaced_run(self.folder)
            if opt.overwrite and not opt.continue_train:
                self.replace_old_run = checkpoint.set_aside_run(self.folder)
        self.optimizer_G, self.optimizer_D = self.create_optimizers(opt)

    # ------------------------------------------------------------------------------------------------
    def load_init_from(self, path: str):
        """--init_from: a fresh run (fresh optimizers, epoch 1) from a generator file (ours or NVlabs SPADE's
        layout), strictly loaded; the discriminator and encoder start from the SPADE-named files beside it
        (`{label}_net_D.pth`, `_E`) when there are some, as SPADE's --continue_train would load them, else afresh.
        An EMA generator starts as a copy of the loaded one."""
        opt, model = self.opt, self.model
        hint = ("give the options the file was trained with; a released SC-GAN file is converted first by "
                "python -m tools.import_checkpoint")
        nets = {"G": model.netG, "D": model.netD, "E": model.netE}
        files = {"G": path, **checkpoint.init_from_files(path, [n for n in ("D", "E") if nets[n] is not None])}
        for name, file in files.items():
            state = checkpoint.read_state_dict(file, "--init_from", opt.trust_pickle)
            checkpoint.load_state_into(nets[name], state, file, name, hint=hint)
        if self.ctx.is_main:
            fresh = [f"net{n}" for n, net in nets.items() if net is not None and n not in files]
            print(f"--init_from: {', '.join(f'net{n} from {f}' for n, f in files.items())}"
                  f"{'; ' + ', '.join(fresh) + ' start afresh (no file beside it)' if fresh else ''}; fresh "
                  f"optimizers, epoch 1")

    def wrap(self, net, find_unused_parameters=False):
        """DDP for several processes (gradients averaged over ranks in backward), torch.compile when asked."""
        if self.ctx.distributed:
            net = DistributedDataParallel(net, device_ids=[self.ctx.device] if self.ctx.device.type == "cuda"
                                          else None, find_unused_parameters=find_unused_parameters)
        if self.opt.compile:
            net = torch.compile(net)
        return net

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.amp_dtype)

    def generator_parameters(self):
        model = self.model
        params = list(model.netG.parameters())
        if model.netE is not None:
            params += list(model.netE.parameters())
        return params

    def create_optimizers(self, opt):
        optimizer_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[opt.optimizer]
        lr_G, lr_D = self.learning_rates(1)
        betas = (opt.beta1, opt.beta2)
        optimizer_G = optimizer_cls(self.generator_parameters(), lr=lr_G, betas=betas)
        optimizer_D = optimizer_cls(self.model.netD.parameters(), lr=lr_D, betas=betas)
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
        """{name: loss} -> {name: weight * loss}; batch-summed losses count the whole global batch."""
        scale = {name: self.ctx.world_size for name in BATCH_SUM_LOSSES}
        return {name: value * (self.weights[name] * scale.get(name, 1)) for name, value in losses.items()}

    def run_generator_one_step(self, data):
        """One G (and E) update: D scores the fake with its gradients off (its raw module, so DDP does not
        synchronize D here), G's gradients are averaged over ranks by its DDP wrapper."""
        seg, real = self.model.preprocess_input(data)
        self.optimizer_G.zero_grad(set_to_none=True)
        buffers = self.buffers_before_step()
        with self.autocast(), frozen(self.model.netD):
            losses, generated, extra_images = self.model.generator_losses(seg, real, self.netG, self.netE,
                                                                          self.model.netD)
        losses = self.weighted(losses)
        self.generated, self.aux_images = generated, extra_images
        total = sum(losses.values())
        if self.finite(total, losses, "G", buffers):
            self.scaler_G.scale(total).backward()
            self.scaler_G.step(self.optimizer_G)
            self.scaler_G.update()
            self.update_ema()
        self.g_losses = {k: v.detach() for k, v in losses.items()}

    def run_discriminator_one_step(self, data):
        seg, real = self.model.preprocess_input(data)
        self.optimizer_D.zero_grad(set_to_none=True)
        buffers = self.buffers_before_step()  # G's too: its forward in train mode updates its statistics
        with self.autocast():
            losses = self.weighted(self.model.discriminator_losses(seg, real, self.netD))
        total = sum(losses.values())
        if self.finite(total, losses, "D", buffers):
            self.scaler_D.scale(total).backward()
            self.scaler_D.step(self.optimizer_D)
            self.scaler_D.update()
        self.d_losses = {k: v.detach() for k, v in losses.items()}

    def buffers_before_step(self):
        """[(network name, buffer name, buffer, its value now)] of the networks a step runs: what a skipped step
        puts back. Buffers are small (batch-norm statistics, spectral norms' u and v)."""
        nets = [("G", self.model.netG), ("D", self.model.netD), ("E", self.model.netE)]
        return [(name, key, b, b.detach().clone()) for name, net in nets if net is not None
                for key, b in net.named_buffers()]

    def finite(self, total, losses, which: str, buffers=()) -> bool:
        """One isfinite on the summed loss and the floating buffers of `buffers` (ranks agree: one rank's NaN
        skips the step everywhere). A non-finite step is skipped (its update is not applied, the buffers are
        put back as they were before it) and counted; --max_nonfinite_steps in a row raise NonFiniteError."""
        floating = [b for _, _, b, _ in buffers if b.is_floating_point()]
        checked = torch.cat([total.detach().float().reshape(1)] + [b.detach().float().reshape(-1) for b in floating])
        bad = not bool(torch.isfinite(checked).all())
        if not distributed.any_rank(bad, self.ctx):
            self.nonfinite_in_a_row = 0
            self.last_finite_losses.update({k: v.detach() for k, v in losses.items()})
            return True
        self.nonfinite_in_a_row += 1
        self.nonfinite_total += 1
        values = ", ".join(f"{k}: {float(v.detach()):.3f}" for k, v in losses.items())
        overflowed = next(((name, key) for name, key, b, _ in buffers
                           if b.is_floating_point() and not bool(torch.isfinite(b).all())), None)
        with torch.no_grad():
            for _, _, b, before in buffers:
                b.copy_(before)
        count = f"({self.nonfinite_in_a_row} in a row, {self.nonfinite_total} in all)"
        if self.ctx.is_main and (bool(torch.isfinite(total.detach())) and overflowed is not None):
            print(f"warning: non-finite {which} step: net{overflowed[0]}'s buffer {overflowed[1]} became NaN/Inf "
                  f"(losses {values}): update skipped, buffers as before the step {count}")
        elif self.ctx.is_main:
            print(f"warning: non-finite {which} loss ({values}): update skipped {count}")
        if self.nonfinite_in_a_row >= self.opt.max_nonfinite_steps:
            last = ", ".join(f"{k}: {float(v):.3f}" for k, v in self.last_finite_losses.items()) or "none yet"
            raise NonFiniteError(
                f"{self.nonfinite_in_a_row} steps in a row were not finite (--max_nonfinite_steps "
                f"{self.opt.max_nonfinite_steps}): each had a NaN/Inf loss or batch-norm statistic; last finite "
                f"losses: {last}. Nothing was saved: {self.checkpoint_state()}. Lower --lr, or check the data and "
                f"the weights")
        return False

    def checkpoint_state(self) -> str:
        """What a refused save leaves: the experiment's checkpoint, or none."""
        return ("the last complete checkpoint is intact" if existing_checkpoints(self.folder)
                else "there is no earlier checkpoint")

    def get_latest_losses(self):
        """The latest weighted losses, averaged over ranks (every rank must call it)."""
        return {k: float(v) for k, v in distributed.mean_over_ranks({**self.g_losses, **self.d_losses},
                                                                    self.ctx).items()}

    def get_latest_generated(self):
        return self.generated

    # ------------------------------------------------------------------------------------------------
    # EMA generator
    @staticmethod
    def make_ema(netG):
        ema = copy.deepcopy(netG).eval()
        for p in ema.parameters():
            p.requires_grad_(False)
        return ema

    @torch.no_grad()
    def update_ema(self):
        """netG_ema = decay * netG_ema + (1 - decay) * netG for the parameters; buffers (spectral-norm u, v,
        batch-norm statistics) are copied."""
        if self.netG_ema is None:
            return
        for ema, p in zip(self.netG_ema.parameters(), self.model.netG.parameters()):
            ema.lerp_(p.detach(), 1.0 - self.opt.ema_decay)
        for ema, b in zip(self.netG_ema.buffers(), self.model.netG.buffers()):
            ema.copy_(b)
        self.ema_batchnorm_fresh = False

    @torch.no_grad()
    def refresh_ema_batchnorm(self, batches):
        """Recompute the EMA generator's batch-norm statistics as a plain average over `batches` (OASIS does
        this before saving: the copied statistics belong to netG's weights, not to the averaged ones). The
        global RNG is left as it was, so saving never changes the course of training."""
        norms = [m for m in self.netG_ema.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 and m.track_running_stats]
        if not norms or not batches or self.ema_batchnorm_fresh:
            return
        momenta = [m.momentum for m in norms]
        # (the train-mode passes also step the spectral norms' power iterations, on the EMA weights: their u and v
        # then fit the weights that are saved)
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average
        self.netG_ema.train()
        with torch.random.fork_rng(devices=[self.ctx.device] if self.ctx.device.type == "cuda" else []):
            for data in batches:
                seg, real = self.model.preprocess_input(data)
                with self.autocast():
                    self.model.generate_fake(seg, real, netG=self.netG_ema)
        self.netG_ema.eval()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.ema_batchnorm_fresh = True  # the next refresh (the save after the evaluation) keeps this one

    # ------------------------------------------------------------------------------------------------
    def networks_to_save(self):
        """The raw networks (not their DDP wrappers), by the name of their files."""
        model = self.model
        nets = {"G": model.netG, "D": model.netD}
        if model.netE is not None:
            nets["E"] = model.netE
        if self.netG_ema is not None:
            nets["G_ema"] = self.netG_ema
        return nets

    def save(self, epoch: int, epoch_iter: int, total_steps: int, labels=(), ema_bn_batches=()):
        """One checkpoint unit at the point training goes on from (`epoch`, with `epoch_iter` of its images
        done; `total_steps` images seen, the save id): the networks (netG_ema too, its batch-norm statistics
        first recomputed over `ema_bn_batches`), the optimizers, the GradScalers and every rank's RNG state,
        published as latest_net_*.pth and {label}_net_*.pth for each of `labels` (an epoch, as SPADE's epoch
        files, or 'best' for the epoch --best_metric picks). Every rank calls
        it; rank 0 writes, and a write that fails (a full disk) raises CheckpointError on every rank. Non-finite
        weights are never saved. A save at the step of the previous one replaces
        that unit."""
        if self.netG_ema is not None:
            self.refresh_ema_batchnorm(ema_bn_batches)
        nets = self.networks_to_save()
        for name, net in nets.items():
            for key, value in net.state_dict().items():
                if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                    raise NonFiniteError(f"net{name} holds NaN/Inf values ({key}): not saved, "
                                         f"{self.checkpoint_state()}. Lower --lr, or check the data and the weights")
        rng_states = distributed.gather_objects(torch.get_rng_state(), self.ctx)
        self.last_save_id = total_steps
        failed = None
        if self.ctx.is_main:
            labels = ["latest"] + [str(label) for label in labels]
            counters = {"epoch": epoch, "epoch_iter": epoch_iter, "total_steps": total_steps}
            train_state = {**counters, "optimizer_G": self.optimizer_G.state_dict(),
                           "optimizer_D": self.optimizer_D.state_dict(), "scaler_G": self.scaler_G.state_dict(),
                           "scaler_D": self.scaler_D.state_dict(), "rng_torch": rng_states,
                           "world_size": self.ctx.world_size, "nonfinite_in_a_row": self.nonfinite_in_a_row,
                           "nonfinite_total": self.nonfinite_total}
            if self.ctx.device.type == "cuda":
                train_state["rng_cuda"] = distributed.gather_objects(torch.cuda.get_rng_state(), self.ctx)
            try:
                checkpoint.save_unit(self.folder, total_steps,
                                     {n: checkpoint.cpu_state_dict(net) for n, net in nets.items()},
                                     train_state, labels, counters)
                if self.replace_old_run:  # the new run has a complete save
                    checkpoint.remove_replaced_run(self.folder, labels)
                    self.replace_old_run = False
            except CheckpointError as e:  # a full disk: every rank learns it below and stops with it
                failed = str(e)
        elif self.ctx.device.type == "cuda":
            distributed.gather_objects(torch.cuda.get_rng_state(), self.ctx)
        _, failures = distributed.agree(False, failed, self.ctx)  # the barrier: rank 0 has written, or failed to
        if failures:
            raise CheckpointError(failures[0][1])

    def resume(self):
        """With --continue_train: load the networks, optimizers, RNG state and counters and return (epoch,
        epoch_iter, total_steps) to go on from. 'latest' reads the newest complete unit under saves/ (an
        incomplete newer one is set aside with a warning); an epoch label, or a folder of NVlabs SPADE (no
        units), loads SPADE's network files and starts the optimizers afresh."""
        opt, folder = self.opt, self.folder
        if self.ctx.is_main:
            checkpoint.remove_stale_temporaries(folder)
        distributed.barrier(self.ctx)
        nets = self.networks_to_save()
        if opt.which_epoch == "latest" and checkpoint.list_units(folder):
            found = checkpoint.newest_complete_unit(folder)
            checkpoint.check_published_files(folder, *(found or (None, None)))  # a file copied over latest_net_*
            if found is None:
                raise CheckpointError(checkpoint.unresumable(folder))
            unit, manifest = found
            for name, net in nets.items():
                path = os.path.join(unit, f"net_{name}.pth")
                if name == "G_ema" and not os.path.isfile(path):  # --ema_decay turned on for a resumed run
                    net.load_state_dict(self.model.netG.state_dict())
                    continue
                self.load_own_file(net, checkpoint.safe_load(path, opt.trust_pickle), path, name)
            state = checkpoint.safe_load(os.path.join(unit, "train_state.pth"), opt.trust_pickle)
            self.optimizer_G.load_state_dict(state["optimizer_G"])
            self.optimizer_D.load_state_dict(state["optimizer_D"])
            self.scaler_G.load_state_dict(state["scaler_G"])
            self.scaler_D.load_state_dict(state["scaler_D"])
            if state["world_size"] == self.ctx.world_size:  # each rank goes on with its own random stream
                torch.set_rng_state(state["rng_torch"][self.ctx.rank])
                if "rng_cuda" in state and self.ctx.device.type == "cuda":
                    torch.cuda.set_rng_state(state["rng_cuda"][self.ctx.rank])
            else:
                print(f"note: the checkpoint was written by {state['world_size']} processes and this run has "
                      f"{self.ctx.world_size}: random streams (VAE noise) start afresh from --seed")
            self.nonfinite_in_a_row, self.nonfinite_total = state["nonfinite_in_a_row"], state["nonfinite_total"]
            self.resumed_unit = unit, manifest
            self.last_save_id = manifest["save_id"]
            return state["epoch"], state["epoch_iter"], state["total_steps"]

        for name, net in nets.items():
            if name == "G_ema" and not os.path.isfile(checkpoint.network_path(folder, opt.which_epoch, name)):
                net.load_state_dict(self.model.netG.state_dict())
                continue
            path = checkpoint.existing_network_path(folder, opt.which_epoch, name)
            self.load_own_file(net, checkpoint.safe_load(path, opt.trust_pickle), path, name)
        if opt.which_epoch.isdigit():
            epoch = int(opt.which_epoch) + 1
        elif os.path.isfile(os.path.join(folder, "iter.txt")):
            epoch, _ = checkpoint.read_iter_file(folder)
        else:
            epoch = 1
        if self.ctx.is_main:
            print(f"no training state for --which_epoch {opt.which_epoch} (SPADE's files hold the networks only): "
                  f"optimizers start afresh at epoch {epoch}")
        return epoch, 0, 0

    def load_own_file(self, net, state, path, name):
        """Load a file of this experiment into `net`; one that does not fit is told by the first option that
        differs from the experiment's saved options (opt.json: what its files were trained with)."""
        try:
            checkpoint.load_state_into(net, state, path, name)
        except checkpoint.NetworkMismatch as e:
            saved = os.path.join(self.folder, "opt.json")
            option = checkpoint.differing_option(self.opt, name, saved)
            if option is None:
                raise
            raise CheckpointError(e.told_by(option, "resume with those: leave the option out, or pass "
                                                    "--load_from_opt_file")) from None

    def publish_resumed(self):
        """Once the resumed run is known to go on (train.py has checked that epochs remain): units newer than
        the one resumed, incomplete, go aside, and SPADE's names point at it again (this repairs links a kill
        left half-updated). A refused resume writes nothing. Every rank calls it."""
        if self.resumed_unit is None:
            return
        unit, manifest = self.resumed_unit
        distributed.barrier(self.ctx)  # every rank has read its unit before rank 0 moves any aside
        if self.ctx.is_main:
            checkpoint.set_aside_units_newer_than(self.folder, manifest["save_id"])
            checkpoint.publish_unit(self.folder, unit, manifest)


@contextlib.contextmanager
def frozen(net):
    """No gradients for `net`'s parameters inside (the graph built here never reaches them)."""
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)
