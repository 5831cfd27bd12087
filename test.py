"""Synthesize images for a trained model and write results/NAME/test_EPOCH/index.html.

python test.py --name NAME [--which_epoch latest] [--how_many N]. The experiment's saved training options
are read, so the model is rebuilt as it was trained. Without --name, the experiment most recently trained
under --checkpoints_dir is tested. From labels alone:
python test.py --name NAME --dataset_mode custom --label_dir DIR (no --image_dir).
The model names the images of each row (model.visuals): label, result and real image; for --model unpaired the
source, the reference (a target-domain image) and the result. A --use_vae model also writes K samples per label
(--n_samples K) and style interpolations (--interpolate STEPS --style_a IMG --style_b IMG); see inference/multimodal.py.
Label maps, and the multimodal rows, are rendered by inference.Synthesizer (the generator with its spectral norms
folded, as every application runs it), in --precision fp32, bf16 or fp16 (CUDA only). --model unpaired (a source
and a reference image, no label map) keeps the model's own method, in fp32.
"""
import os
import sys

import torch
from tqdm import tqdm

import data
from checkpointing.storage import CheckpointError, NetworkMismatch, check_writable, differing_option
from inference import Synthesizer, multimodal
from models import create_model
from models.pix2pix_model import label_visuals
from options.preflight import Problems, test_problems
from options.test_options import TestPageOptions, say_precision_cost
from util import html
from util.visualizer import Visualizer


def main(argv=None):
    opt = TestPageOptions().parse(argv)
    say_precision_cost(opt)
    torch.manual_seed(opt.seed)
    web_dir = os.path.join(opt.results_dir, opt.name, f"{opt.phase}_{opt.which_epoch}")
    device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
    try:
        # the checkpoint files, the data and the results folder, all reported at once before the model is built
        problems, dataset = test_problems(opt, web_dir)
        if problems:
            raise Problems(problems)
        if opt.model == "pix2pix":
            synth, model = Synthesizer.from_options(opt, device=device, precision=opt.precision,
                                                        layout_path=opt.layout_conv), None
            if synth.uses_ema:
                print(f"using the EMA generator {synth.generator_file} (--no_ema for netG)")
        else:  # unpaired translation reads a source and a reference image: the model's own method
            synth, model = None, create_model(opt).eval()
        dataloader = data.create_dataloader(opt, dataset)
        check_writable(web_dir)
    except NetworkMismatch as e:
        sys.exit(f"error: {mismatch_line(e, opt)}")
    except (Problems, data.DatasetError, FileNotFoundError, ValueError, CheckpointError) as e:
        sys.exit(f"error: {e}")
    has_images = dataloader.dataset.has_images

    visualizer = Visualizer(opt)
    webpage = html.HTML(web_dir, f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.which_epoch}")
    try:
        rows = multimodal.MultimodalRows(synth, opt, visualizer, webpage) if multimodal.asked(opt) else None
    except data.DatasetError as e:  # an unreadable style image
        sys.exit(f"error: {e}")

    done = 0
    total = int(min(opt.how_many, len(dataloader.dataset)))
    progress = tqdm(total=total, unit="image", desc="test", dynamic_ncols=True)
    try:
        for data_i in dataloader:
            if done >= opt.how_many:
                break
            if not has_images:
                data_i = {k: v for k, v in data_i.items() if k != "image"}
            if rows is not None:
                count = int(min(data_i["label"].size(0), opt.how_many - done))
                rows.write(data_i, count)
                done += count
                progress.update(count)
                continue
            if synth is not None:
                generated = synth.synthesize_batch(data_i)
                visuals = label_visuals(data_i, generated)  # input_label, synthesized_image, real_image
            else:
                generated = model(data_i, mode="inference")
                visuals = model.visuals(data_i, generated)  # unpaired: source, reference, result
            for b in range(int(min(generated.size(0), opt.how_many - done))):
                visualizer.save_images(webpage, {name: v[b:b + 1] for name, v in visuals.items()},
                                       data_i["path"][b])
                done += 1
                progress.update(1)
    except data.DatasetError as e:
        sys.exit(f"error: {e}")
    finally:
        progress.close()
    webpage.save()
    print(f"wrote {done} results to {os.path.join(web_dir, 'index.html')}")


def mismatch_line(error, opt):
    """A network file that does not fit the options: the first option given here that differs from the
    experiment's opt.json (what its files were trained with), else the file is not the experiment's."""
    saved = os.path.join(opt.checkpoints_dir, opt.name, "opt.json")
    option = differing_option(opt, error.net_name, saved)
    if option is not None:
        return error.told_by(option, f"leave {option.split()[0]} out: test.py takes the options from that file")
    instead = (f"; --no_ema tests {opt.which_epoch}_net_G.pth instead" if error.net_name == "G_ema" else "")
    return (f"{error.what()}: {error.difference}, and these are the options of {saved}: the file holds another "
            f"network (copied in from another experiment?){instead}")


if __name__ == "__main__":
    main()
