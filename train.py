"""Train a semantic image synthesis model: python train.py --name NAME --netG scgan|spade|pix2pixhd ...

One process per device: `--gpu_ids 0,1,2,3` starts four DDP processes itself; `torchrun --nproc_per_node 4
train.py ...` (and multi-node torchrun) does the same from outside; `--gpu_ids -1` is one CPU process.
--batchSize is the global batch. Rank 0 writes logs, pages and checkpoints.

Ctrl-C or SIGTERM (what Slurm sends before it kills a job) finishes the current step, saves the latest
checkpoint and exits; so does a bad data file met mid-epoch, on any rank: the ranks agree at every step boundary
(util/distributed.py). Before the first step the same signal stops the setup where it is, saving nothing.
--continue_train goes on from the last complete save (network weights, optimizers, RNG state, epoch and
iteration). A run without --continue_train refuses an experiment folder that already holds a checkpoint unless
--overwrite is given; a refused run writes nothing.
"""
import itertools
import os
import signal
import sys

import torch

import data
from checkpointing.storage import CheckpointError, check_writable
from models.networks.loss import MissingWeightsError
from options.preflight import Problems, training_problems
from options.train_options import TrainOptions
from trainers.eval_monitor import EvalMonitor
from trainers.pix2pix_trainer import NonFiniteError, Pix2PixTrainer
from util.distributed import (agree, cleanup, is_collective_failure, launch, launched_by_torchrun, leave_word, setup,
                              stopped_answering)
from util.iter_counter import IterationCounter
from util.visualizer import Visualizer


class RanksFailed(Exception):
    """Ranks that could not load their next batch, [(rank, line)], known to every rank at the same step boundary:
    the last step is complete everywhere, so it can still be saved."""

    def __init__(self, failures, ctx):
        super().__init__("; ".join(f"rank {rank}: {line}" if ctx.distributed else line for rank, line in failures))


def stop_run(message, ctx, speaks=None):
    """Stop with an error. Under DDP the line is printed at once, before the process group is torn down (torchrun
    may be stopping this process already), and by one rank: rank 0 where every rank stops on the same error."""
    if not ctx.distributed:
        sys.exit(message)
    if ctx.is_main if speaks is None else speaks:
        print(message, file=sys.stderr, flush=True)
    sys.exit(1)


class StoppedBeforeTraining(BaseException):
    """A signal before the first step (a BaseException, as KeyboardInterrupt is, so that no `except Exception`
    of the setup takes it for an error): the setup is abandoned where it is, and nothing has been saved."""

    def __init__(self, signal_name):
        super().__init__(signal_name)
        self.signal_name = signal_name


class StopRequest:
    """SIGINT / SIGTERM. Until `training` is set, the handler stops the setup at once (StoppedBeforeTraining:
    building networks or reading a checkpoint can take minutes, and nothing is saved yet). From then on it sets
    a flag that the loop reads between steps, so a save always holds a whole step; a second signal while
    stopping only says that the save is under way."""

    def __init__(self):
        self.signal_name = None
        self.training = False
        self.previous = {}

    def __enter__(self):
        self.previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        """The handlers of before, back."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def handle(self, signum, frame):
        name = signal.Signals(signum).name
        if not self.training:
            if self.signal_name is None:  # a second signal while the setup unwinds changes nothing
                self.signal_name = name
                raise StoppedBeforeTraining(name)
        elif self.signal_name is None:  # the one line comes when the save is done
            self.signal_name = name
        else:
            print(f"{name} received again: the checkpoint is being saved and the run stops right after (kill -9 "
                  f"is safe too: the previous complete checkpoint stays)", flush=True)

    def __bool__(self):
        return self.signal_name is not None

    def agree(self):
        """Another rank received the signal: stop here too."""
        self.signal_name = self.signal_name or "SIGTERM"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    speaks = os.environ.get("RANK", "0") == "0"
    with StopRequest() as stop:
        try:
            options = TrainOptions()
            opt = options.parse(argv, save=False, verbose=speaks)
            if len(opt.gpu_ids) > 1 and not launched_by_torchrun():  # SPADE's habit: one process per listed GPU
                stop.release()  # this process only waits; the training processes answer signals themselves
                launch_processes(argv, len(opt.gpu_ids))
                return
            ctx = setup(opt.gpu_ids, opt.dist_timeout)
            try:
                train(options, opt, ctx, stop)
            finally:
                cleanup()
        except StoppedBeforeTraining as e:
            if speaks:
                kept = " (the checkpoint it resumes from is as it was)" if "--continue_train" in argv else ""
                print(f"{e.signal_name}: the run stopped before training started; nothing was saved{kept}",
                      file=sys.stderr, flush=True)
            sys.exit(128 + signal.Signals[e.signal_name].value)


def launch_processes(argv, world_size):
    """`python train.py --gpu_ids 0,1,...`: start the DDP processes and wait; Ctrl-C and SIGTERM reach them
    (they save and stop together), this process only waits."""
    print(f"starting {world_size} training processes (DDP, one per GPU of --gpu_ids)", flush=True)
    try:
        launch(main, (argv,), world_size)
    except Exception as e:  # a process failed or stopped; it printed its own line
        code = getattr(e, "exit_code", None)  # torch.multiprocessing.ProcessExitedException
        if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            sys.exit(code)  # stopped by a signal after saving, as a single process would
        sys.exit(f"error: a training process failed ({str(e).splitlines()[0] if str(e) else type(e).__name__})")


def train(options, opt, ctx, stop):
    if not ctx.is_main:  # progress, losses and messages are printed once, by rank 0
        sys.stdout = open(os.devnull, "w")
    torch.manual_seed(opt.seed + ctx.rank)
    folder = os.path.join(opt.checkpoints_dir, opt.name)
    try:
        # everything that can be known without building anything, reported at once; nothing is created yet
        problems, dataset = training_problems(opt, dataroot_given=options.given_on_command_line("--dataroot")
                                              or opt.load_from_opt_file)
        if problems:
            raise Problems(problems)
        trainer = Pix2PixTrainer(opt, ctx)
        iter_counter = IterationCounter(opt, len(dataset), *(trainer.resume() if opt.continue_train else (1, 0, 0)))
        if iter_counter.first_epoch > iter_counter.total_epochs:  # refused before anything is written
            sys.exit(f"error: the run already finished its {iter_counter.total_epochs} epochs (it would resume at "
                     f"epoch {iter_counter.first_epoch}): raise --niter or --niter_decay to train longer")
        dataloader = data.create_dataloader(opt, dataset, rank=ctx.rank, world_size=ctx.world_size)
        monitor = EvalMonitor(opt, ctx.device) if opt.eval_freq > 0 and ctx.is_main else None
        if monitor is not None:
            print(f"--eval_freq {opt.eval_freq}: {monitor.describe_choice()}")
        if ctx.is_main:
            check_writable(folder)  # creates the experiment folder: training starts
            options.save_options(opt)  # only now: the networks were built and loaded with these options
        trainer.publish_resumed()
    except (Problems, MissingWeightsError, data.DatasetError, FileNotFoundError, ValueError, CheckpointError) as e:
        sys.exit(f"error: {e}")

    visualizer = Visualizer(opt) if ctx.is_main else None
    if opt.continue_train:
        print(f"resuming at epoch {iter_counter.first_epoch}, image {iter_counter.epoch_iter} of the epoch")
    ema_loader = (data.create_dataloader(opt, dataloader.dataset, rank=ctx.rank, world_size=ctx.world_size)
                  if opt.ema_decay > 0 else None)

    def save(epoch, epoch_iter, labels=()):
        bn_batches = itertools.islice(ema_loader, opt.ema_bn_batches) if ema_loader is not None else ()
        trainer.save(epoch, epoch_iter, iter_counter.total_steps_so_far, labels, bn_batches)

    def evaluate(epoch):
        """--eval_freq: --eval_metrics of the (EMA) generator on rank 0 -> the labels of the epoch's save
        ('best')."""
        if not (opt.eval_freq > 0 and epoch % opt.eval_freq == 0):
            return []
        if trainer.netG_ema is not None:  # its batch-norm statistics as the save will have them, not netG's
            # (on every rank: synchronized batch norms take part in collectives)
            trainer.refresh_ema_batchnorm(itertools.islice(ema_loader, opt.ema_bn_batches))
        if monitor is None:
            return []
        netG = trainer.netG_ema if trainer.netG_ema is not None else trainer.model.netG
        values = monitor.measure(trainer.model, netG, epoch)
        monitor.draw(visualizer.web_dir)
        if not opt.no_html:
            visualizer.write_index()
        best = monitor.is_best(values)
        print(f"end of epoch {epoch}: {monitor.describe(values)} ({monitor.num_images} validation images"
              f"{', EMA generator' if trainer.netG_ema is not None else ''})")
        if best:
            print(monitor.describe_best(epoch, values))
        return ["best"] if best else []

    stop.training = True  # from here a signal is answered at the next step boundary
    try:
        train_loop(opt, ctx, trainer, dataloader, iter_counter, visualizer, stop, save, evaluate)
    except Exception as e:  # inside a step or a save, where the other ranks may wait for this one in a collective
        if not ctx.distributed:
            raise
        where = f"epoch {iter_counter.epoch}, image {iter_counter.epoch_iter}"
        if not is_collective_failure(e):  # this rank failed: the others learn it from the store, then the traceback
            leave_word(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}", ctx)
            raise
        line, speaks = stopped_answering(e, ctx, interrupted=lambda: bool(stop))
        stop_run(f"error at {where}: {line}; not saved (the ranks can no longer agree on a step): "
                 f"--continue_train resumes from the last complete checkpoint", ctx, speaks)


def train_loop(opt, ctx, trainer, dataloader, iter_counter, visualizer, stop, save, evaluate):
    def boundary(error):
        """Between two steps, every rank at the same point: all stop if any was asked to (a signal), all fail if
        any could not load its batch (`error`, one line). True: stop here."""
        stopping, failures = agree(bool(stop), error, ctx)
        if failures:
            raise RanksFailed(failures, ctx)
        if stopping:
            stop.agree()
        return stopping

    first_step = iter_counter.total_steps_so_far
    try:
        for epoch in iter_counter.training_epochs():
            iter_counter.record_epoch_start(epoch)
            trainer.update_learning_rate(epoch)
            dataloader.sampler.set_epoch(epoch, start=iter_counter.epoch_iter)
            batches = iter(dataloader)
            data_i, error = data.next_batch(batches)
            if boundary(error):
                data_i = None
            while data_i is not None:
                batch_index = iter_counter.epoch_iter // opt.batchSize
                if batch_index % opt.D_steps_per_G == 0:
                    trainer.run_generator_one_step(data_i)
                trainer.run_discriminator_one_step(data_i)
                iter_counter.record_one_iteration()

                if iter_counter.needs_printing():
                    losses = trainer.get_latest_losses()  # averaged over ranks: every rank takes part
                    progress, seconds_per_image = iter_counter.progress()
                    if ctx.is_main:
                        visualizer.print_current_errors(epoch, iter_counter.epoch_iter, losses, seconds_per_image,
                                                        progress)
                        visualizer.plot_current_errors(losses, iter_counter.total_steps_so_far)
                if iter_counter.needs_displaying() and ctx.is_main:
                    visuals = trainer.model.visuals(data_i, trainer.get_latest_generated())
                    for name, image in trainer.aux_images.items():
                        visuals[name] = image
                    visualizer.display_current_results(visuals, epoch, iter_counter.total_steps_so_far)
                # the next batch is loaded before the boundary: a rank that cannot load it says so there, and every
                # rank stops after this step instead of waiting in the next one for it
                data_i, error = data.next_batch(batches)
                if boundary(error):
                    break
                if iter_counter.needs_saving():
                    print(f"saving the latest model (epoch {epoch}, total_steps {iter_counter.total_steps_so_far})",
                          flush=True)
                    save(epoch, iter_counter.epoch_iter)
            if stop:
                break

            seconds = iter_counter.record_epoch_end()
            print(f"End of epoch {epoch} / {iter_counter.total_epochs} \t Time Taken: {seconds:.0f} sec")
            labels = evaluate(epoch)  # ['best'] on rank 0 when the --best_metric improved
            with_label = epoch % opt.save_epoch_freq == 0 or epoch == iter_counter.total_epochs
            if with_label:
                print(f"saving the model at the end of epoch {epoch}, iters {iter_counter.total_steps_so_far}")
                labels.append(epoch)
            evaluated = opt.eval_freq > 0 and epoch % opt.eval_freq == 0  # the same on every rank
            if with_label or evaluated or trainer.last_save_id != iter_counter.total_steps_so_far:
                save(epoch + 1, 0, labels)
    except (RanksFailed, data.DatasetError) as e:
        if isinstance(e, data.DatasetError) and ctx.distributed:  # met outside the loading (an evaluation):
            raise  # the other ranks may be in a collective
        try:
            save(iter_counter.epoch, iter_counter.epoch_iter)
        except (NonFiniteError, CheckpointError) as save_error:
            stop_run(f"error: {e}\n(and the checkpoint could not be saved: {save_error})", ctx)
        stop_run(f"error: {e}\n(saved the latest checkpoint at epoch {iter_counter.epoch}, image "
                 f"{iter_counter.epoch_iter}; fix the data and resume with --continue_train)", ctx)
    except (NonFiniteError, CheckpointError) as e:  # the same on every rank (agreed on in finite() and save())
        stop_run(f"error at epoch {iter_counter.epoch}, image {iter_counter.epoch_iter}: {e}", ctx)
    except KeyboardInterrupt:  # raised outside a step boundary: its state would be half a step, so no save
        sys.exit(f"interrupted mid-step at epoch {iter_counter.epoch}, image {iter_counter.epoch_iter}: not saved; "
                 f"--continue_train resumes from the last complete checkpoint")

    if stop:
        if iter_counter.total_steps_so_far == first_step:  # at the boundary before the first step
            raise StoppedBeforeTraining(stop.signal_name)
        try:
            save(iter_counter.epoch, iter_counter.epoch_iter)
        except (NonFiniteError, CheckpointError) as e:
            sys.exit(f"{stop.signal_name}: stopped, but the checkpoint was not saved: {e}")
        if ctx.is_main:
            print(f"{stop.signal_name}: saved the latest checkpoint at epoch {iter_counter.epoch}, image "
                  f"{iter_counter.epoch_iter}; resume with --continue_train", file=sys.stderr, flush=True)
        sys.exit(128 + signal.Signals[stop.signal_name].value)
    print("Training was successfully finished.")


if __name__ == "__main__":
    main()
