"""Check (not a test: it needs a GPU): the CUDA path computes what the CPU path computes.

For scgan+fpse and spade+multiscale at the synthetic demo's settings (64x64, ngf 16), one model is built on the
CPU and copied to the GPU with the same weights; then, in fp32 with TF32 off:
- the generator's output (eval mode) and its loss values (train mode, D and G losses) agree to 1e-4;
- the parameter gradients of one G step agree to 1e-3 relative;
- under bf16 / fp16 autocast the generator's output stays within 0.1 of fp32 and every loss is finite.
Prints one line per check and exits 1 if any fails.

    python -m benchmarks.cuda_consistency
"""
import contextlib
import copy
import io
import sys
import tempfile

import torch


def build(net_g, tmp):
    from models import create_model
    from options.train_options import TrainOptions
    argv = ["--dataset_mode", "synthetic", "--netG", net_g, "--checkpoints_dir", tmp, "--gpu_ids", "-1",
            "--batchSize", "2"]
    with contextlib.redirect_stdout(io.StringIO()):
        opt = TrainOptions().parse(argv, save=False, verbose=False)
        model = create_model(opt, device=torch.device("cpu"))
    return opt, model


def relative(a, b):
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def check(net_g, failures):
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        opt, cpu = build(net_g, tmp)
    gpu = copy.deepcopy(cpu).cuda()
    label = torch.randint(0, opt.label_nc, (2, 1, 64, 64))
    data = {"label": label, "instance": torch.zeros(1), "image": torch.rand(2, 3, 64, 64) * 2 - 1}

    def report(name, ok, detail):
        print(f"{net_g}: {name}: {'ok' if ok else 'FAILED'} ({detail})", flush=True)
        if not ok:
            failures.append(f"{net_g} {name}")

    # generator output, eval mode
    outputs = {}
    for where, model in (("cpu", cpu), ("cuda", gpu)):
        model.eval()
        seg, _ = model.preprocess_input(data)
        with torch.no_grad():
            outputs[where] = model.netG(seg).float().cpu()
    diff = float((outputs["cpu"] - outputs["cuda"]).abs().max())
    report("G output fp32", diff < 1e-4, f"max |cpu - cuda| = {diff:.2e}")

    # losses and gradients of one G step, train mode (fresh copies so both start from the same state)
    losses, grads = {}, {}
    for where, model in (("cpu", cpu), ("cuda", gpu)):
        model.train()
        model.zero_grad(set_to_none=True)
        seg, real = model.preprocess_input(data)
        torch.manual_seed(1)
        g_losses, _, _ = model.generator_losses(seg, real)
        sum(g_losses.values()).backward()
        losses[where] = {k: float(v.detach()) for k, v in g_losses.items()}
        grads[where] = torch.cat([p.grad.flatten().float().cpu() for p in model.netG.parameters()
                                  if p.grad is not None])
    worst = max(abs(losses["cpu"][k] - losses["cuda"][k]) / max(abs(losses["cpu"][k]), 1e-6) for k in losses["cpu"])
    report("G losses fp32", worst < 1e-3, f"worst relative difference {worst:.2e} over {sorted(losses['cpu'])}")
    rel = relative(grads["cuda"], grads["cpu"])
    report("G gradients fp32", rel < 1e-3, f"relative difference {rel:.2e} over {grads['cpu'].numel()} values")

    # autocast (the fp32 reference again: the train-mode passes above moved the batch-norm statistics)
    gpu.eval()
    seg, real = gpu.preprocess_input(data)
    with torch.no_grad():
        reference = gpu.netG(seg).float().cpu()
    for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype):
            out = gpu.netG(seg).float().cpu()
        diff = float((out - reference).abs().max())
        gpu.train()
        with torch.autocast("cuda", dtype=dtype):
            g_losses, _, _ = gpu.generator_losses(seg, real)
            d_losses = gpu.discriminator_losses(seg, real)
        gpu.eval()
        finite = all(bool(torch.isfinite(v)) for v in {**g_losses, **d_losses}.values())
        report(f"autocast {name}", diff < 0.1 and finite, f"max |{name} - fp32| = {diff:.3f}, losses finite: {finite}")


def main():
    if not torch.cuda.is_available():
        sys.exit("benchmarks.cuda_consistency needs a GPU")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}", flush=True)
    failures = []
    for net_g in ("scgan", "spade"):
        check(net_g, failures)
    if failures:
        sys.exit(f"FAILED: {', '.join(failures)}")
    print("all CUDA consistency checks passed")


if __name__ == "__main__":
    main()
