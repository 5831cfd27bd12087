"""Evaluate a trained model: FID, KID, LPIPS, mIoU / pixel accuracy on the validation set.

python evaluate.py --name NAME [--which_epoch latest] [--protocol paper|custom] [--segmenter_weights FILE [FILE]]
                   [--metrics fid,kid,lpips,miou] [--seg_model seg.pt] [--from_results] [--how_many N]
runs the generator on the test phase of the dataset (or reads the images test.py wrote, --from_results), prints
the metrics and writes results/NAME/eval_EPOCH/metrics.json and index.html with the numbers, the protocol (its
name and settings, evaluation/protocols.py), the experiment, the generator's speed and example rows. Weights come
from local files only (--inception_weights, --lpips_weights, --segmenter_weights, --seg_model; see
docs/evaluation.md).
"""
import os
import sys
import time
from collections import OrderedDict

import torch
from tqdm import tqdm

import data
from evaluation.metrics import MetricSetupError
from evaluation.run import Evaluation, read_result_images, results_folder, save_example, write
from inference import Synthesizer
from options.eval_options import EvalOptions
from util.visualizer import Visualizer


def main(argv=None):
    opt = EvalOptions().parse(argv)
    if opt.model != "pix2pix":  # the metrics compare each result with the real image of its label map
        sys.exit(f"error: evaluate.py measures label-to-image models; '{opt.name}' is --model {opt.model} (for "
                 f"unpaired translation use --eval_freq during training, or benchmarks/unpaired_synthetic.py)")
    torch.manual_seed(opt.seed)
    device = torch.device(f"cuda:{opt.gpu_ids[0]}") if opt.gpu_ids else torch.device("cpu")
    try:
        run = Evaluation(opt, device)   # weights files are checked before any image is made
        dataloader = data.create_dataloader(opt)
        synth = None if opt.from_results else Synthesizer.from_options(opt, device=device,
                                                                        layout_path=opt.layout_conv)
    except (MetricSetupError, data.DatasetError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    if not dataloader.dataset.has_images:
        sys.exit("error: evaluation compares with the real images: give the dataset's images (--image_dir)")

    print(f"protocol {opt.protocol} on {opt.dataset_mode}: {','.join(opt.metrics)}")
    web_dir = os.path.join(opt.results_dir, opt.name, f"eval_{opt.which_epoch}")
    generator_seconds = 0.0
    visualizer = Visualizer(opt)
    examples, total = [], int(min(opt.how_many, len(dataloader.dataset)))
    progress = tqdm(total=total, unit="image", desc="evaluate", dynamic_ncols=True)
    try:
        for data_i in dataloader:
            keep = int(min(data_i["label"].shape[0], total - run.count))
            if keep <= 0:
                break
            real, label, paths = data_i["image"][:keep], data_i["label"][:keep], data_i["path"][:keep]
            if opt.from_results:
                fake = read_result_images(results_folder(opt), paths, real.shape[2:])
            else:
                start = time.perf_counter()
                fake = synth.synthesize_batch(data_i)[:keep]
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                generator_seconds += time.perf_counter() - start
                fake = fake.cpu()
            extras = run.add(fake, real, label)
            for b in range(min(keep, opt.num_examples - len(examples))):
                visuals = OrderedDict([("input_label", label[b:b + 1]), ("synthesized_image", fake[b:b + 1]),
                                       ("real_image", real[b:b + 1])])
                visuals.update((k, v[b:b + 1]) for k, v in extras.items())
                examples.append(save_example(visualizer, web_dir, visuals, paths[b]))
            progress.update(keep)
    except (data.DatasetError, FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    finally:
        progress.close()

    speed = parameters = None
    if synth is not None:
        parameters = sum(p.numel() for p in synth.netG.parameters())
        speed = OrderedDict(generator_images_per_s=run.count / max(generator_seconds, 1e-9), device=str(device),
                            threads=torch.get_num_threads())
    summary = run.finish(dataloader.dataset.class_names, parameters, speed)
    for name, value in summary["metrics"].items():
        print(f"{name}: {value:.4f}")
    for line in summary["protocol"]["settings"]["deviations"]:
        print(f"deviation from the paper's protocol: {line}")
    page = write(web_dir, f"Evaluation: {opt.name}, epoch {opt.which_epoch}, {run.count} images",
                            summary, examples)
    print(f"wrote {os.path.join(web_dir, 'metrics.json')} and {page}")
    return summary


if __name__ == "__main__":
    main()
