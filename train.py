"""Train a semantic image synthesis model: python train.py --name NAME --netG scgan|spade|pix2pixhd ...

Ctrl-C or SIGTERM (what Slurm sends before it kills a job) finishes the current step, saves the latest
checkpoint and exits; so does a bad data file met mid-epoch. --continue_train goes on from the last complete
save (network weights, optimizers, RNG state, epoch and iteration). A run without --continue_train refuses an
experiment folder that already holds a checkpoint unless --overwrite is given.
"""
import os
import signal
import sys
from collections import OrderedDict

import torch

import data
from models.networks.loss import MissingWeightsError
from options.train_options import TrainOptions
from trainers.pix2pix_trainer import NonFiniteError, Pix2PixTrainer, check_fresh_start
from util.checkpoint import CheckpointError, check_writable
from util.iter_counter import IterationCounter
from util.visualizer import Visualizer


class StopRequest:
    """SIGINT / SIGTERM set a flag that the loop reads between steps, so a save always holds a whole step.
    A second signal while stopping only says that the save is under way."""

    def __init__(self):
        self.signal_name = None

    def __enter__(self):
        self.previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)

    def handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.signal_name is None:  # the one line comes when the save is done
            self.signal_name = name
        else:
            print(f"{name} received again: the checkpoint is being saved and the run stops right after (kill -9 "
                  f"is safe too: the previous complete checkpoint stays)", flush=True)

    def __bool__(self):
        return self.signal_name is not None


def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv, save=False)
    torch.manual_seed(opt.seed)
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    try:
        check_fresh_start(opt)
        check_writable(folder)
        trainer = Pix2PixTrainer(opt)
        start = trainer.resume() if opt.continue_train else (1, 0, 0)
        dataloader = data.create_dataloader(opt)
        options.save_options(opt)  # only now: the networks were built and loaded with these options
    except (MissingWeightsError, data.DatasetError, FileNotFoundError, ValueError, CheckpointError) as e:
        sys.exit(f"error: {e}")

    iter_counter = IterationCounter(opt, len(dataloader.dataset), *start)
    if iter_counter.first_epoch > iter_counter.total_epochs:
        sys.exit(f"error: the run already finished its {iter_counter.total_epochs} epochs (it would resume at epoch "
                 f"{iter_counter.first_epoch}): raise --niter or --niter_decay to train longer")
    visualizer = Visualizer(opt)
    if opt.continue_train:
        print(f"resuming at epoch {iter_counter.first_epoch}, image {iter_counter.epoch_iter} of the epoch")

    def save(epoch, epoch_iter, epoch_label=None):
        trainer.save(epoch, epoch_iter, iter_counter.total_steps_so_far, epoch_label)

    with StopRequest() as stop:
        train_loop(opt, trainer, dataloader, iter_counter, visualizer, stop, save)


def train_loop(opt, trainer, dataloader, iter_counter, visualizer, stop, save):
    try:
        for epoch in iter_counter.training_epochs():
            iter_counter.record_epoch_start(epoch)
            trainer.update_learning_rate(epoch)
            dataloader.sampler.set_epoch(epoch, start=iter_counter.epoch_iter)
            for data_i in dataloader:
                batch_index = iter_counter.epoch_iter // opt.batchSize
                if batch_index % opt.D_steps_per_G == 0:
                    trainer.run_generator_one_step(data_i)
                trainer.run_discriminator_one_step(data_i)
                iter_counter.record_one_iteration()

                if iter_counter.needs_printing():
                    losses = trainer.get_latest_losses()
                    progress, seconds_per_image = iter_counter.progress()
                    visualizer.print_current_errors(epoch, iter_counter.epoch_iter, losses, seconds_per_image,
                                                    progress)
                    visualizer.plot_current_errors(losses, iter_counter.total_steps_so_far)
                if iter_counter.needs_displaying():
                    visuals = OrderedDict([("input_label", data_i["label"]),
                                           ("synthesized_image", trainer.get_latest_generated()),
                                           ("real_image", data_i["image"])])
                    for name, image in trainer.aux_images.items():
                        visuals[name] = image
                    visualizer.display_current_results(visuals, epoch, iter_counter.total_steps_so_far)
                if stop:
                    break
                if iter_counter.needs_saving():
                    print(f"saving the latest model (epoch {epoch}, total_steps {iter_counter.total_steps_so_far})",
                          flush=True)
                    save(epoch, iter_counter.epoch_iter)
            if stop:
                break

            seconds = iter_counter.record_epoch_end()
            print(f"End of epoch {epoch} / {iter_counter.total_epochs} \t Time Taken: {seconds:.0f} sec")
            with_label = epoch % opt.save_epoch_freq == 0 or epoch == iter_counter.total_epochs
            if with_label:
                print(f"saving the model at the end of epoch {epoch}, iters {iter_counter.total_steps_so_far}")
            if with_label or trainer.last_save_id != iter_counter.total_steps_so_far:
                save(epoch + 1, 0, epoch if with_label else None)
    except data.DatasetError as e:
        try:
            save(iter_counter.epoch, iter_counter.epoch_iter)
        except (NonFiniteError, CheckpointError) as save_error:
            sys.exit(f"error: {e}\n(and the checkpoint could not be saved: {save_error})")
        sys.exit(f"error: {e}\n(saved the latest checkpoint at epoch {iter_counter.epoch}, image "
                 f"{iter_counter.epoch_iter}; fix the data and resume with --continue_train)")
    except (NonFiniteError, CheckpointError) as e:
        sys.exit(f"error at epoch {iter_counter.epoch}, image {iter_counter.epoch_iter}: {e}")
    except KeyboardInterrupt:  # raised outside a step boundary: its state would be half a step, so no save
        sys.exit(f"interrupted mid-step at epoch {iter_counter.epoch}, image {iter_counter.epoch_iter}: not saved; "
                 f"--continue_train resumes from the last complete checkpoint")

    if stop:
        try:
            save(iter_counter.epoch, iter_counter.epoch_iter)
        except (NonFiniteError, CheckpointError) as e:
            sys.exit(f"{stop.signal_name}: stopped, but the checkpoint was not saved: {e}")
        print(f"{stop.signal_name}: saved the latest checkpoint at epoch {iter_counter.epoch}, image "
              f"{iter_counter.epoch_iter}; resume with --continue_train", file=sys.stderr, flush=True)
        sys.exit(128 + signal.Signals[stop.signal_name].value)
    print("Training was successfully finished.")


if __name__ == "__main__":
    main()
