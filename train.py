"""Train a semantic image synthesis model: python train.py --name NAME --netG scgan|spade|pix2pixhd ...

Ctrl-C, or a bad data file met mid-epoch, saves the latest checkpoint before exiting; --continue_train goes
on from the last saved point (network weights, optimizers, epoch and iteration).
"""
import sys
from collections import OrderedDict

import torch

import data
from models.networks.loss import MissingWeightsError
from options.train_options import TrainOptions
from trainers.pix2pix_trainer import Pix2PixTrainer
from util.iter_counter import IterationCounter
from util.visualizer import Visualizer


def main(argv=None):
    opt = TrainOptions().parse(argv)
    torch.manual_seed(opt.seed)
    try:
        trainer = Pix2PixTrainer(opt)
        dataloader = data.create_dataloader(opt)
    except (MissingWeightsError, data.DatasetError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")

    start = trainer.resume() if opt.continue_train else (1, 0, 0)
    iter_counter = IterationCounter(opt, len(dataloader.dataset), *start)
    visualizer = Visualizer(opt)
    if opt.continue_train:
        print(f"resuming at epoch {iter_counter.first_epoch}, image {iter_counter.epoch_iter} of the epoch")

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
                if iter_counter.needs_saving():
                    print(f"saving the latest model (epoch {epoch}, total_steps {iter_counter.total_steps_so_far})")
                    trainer.save("latest", epoch, iter_counter.epoch_iter, iter_counter.total_steps_so_far)

            seconds = iter_counter.record_epoch_end()
            print(f"End of epoch {epoch} / {iter_counter.total_epochs} \t Time Taken: {seconds:.0f} sec")
            trainer.save("latest", epoch + 1, 0, iter_counter.total_steps_so_far)
            if epoch % opt.save_epoch_freq == 0 or epoch == iter_counter.total_epochs:
                print(f"saving the model at the end of epoch {epoch}, iters {iter_counter.total_steps_so_far}")
                trainer.save(epoch)
    except (KeyboardInterrupt, data.DatasetError) as e:
        trainer.save("latest", iter_counter.epoch, iter_counter.epoch_iter, iter_counter.total_steps_so_far)
        where = f"epoch {iter_counter.epoch}, image {iter_counter.epoch_iter}"
        if isinstance(e, KeyboardInterrupt):
            sys.exit(f"interrupted: saved the latest checkpoint at {where}; resume with --continue_train")
        sys.exit(f"error: {e}\n(saved the latest checkpoint at {where}; fix the data and resume with --continue_train)")
    print("Training was successfully finished.")


if __name__ == "__main__":
    main()
