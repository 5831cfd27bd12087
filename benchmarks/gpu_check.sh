#!/usr/bin/env bash
# The GPU checks (not CI: CI has no GPU), one script so that a short lease runs them all:
#   bash benchmarks/gpu_check.sh OUTDIR
# 1. CUDA and CPU agree (benchmarks.cuda_consistency); 2. train.py on one GPU for spade and scgan, fp32,
# bf16 and fp16 autocast, then test.py; 3. torchrun with two processes over NCCL (with two
# GPUs or more); 4. the model benchmark on CUDA at 256x256, fp32 and bf16, batch 1 and 8, both layout paths
# timed in turns (markdown tables OUT/bench_layout_*.md).
# Every step's output goes to OUTDIR/*.log; the summary to stdout.
set -u
OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
CK=$(mktemp -d)

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log, print status and tail
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  tail -n "${TAIL:-6}" "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'NCCL', torch.cuda.nccl.version())"

TAIL=12 step consistency 120 $PY -m benchmarks.cuda_consistency

common=(--dataset_mode synthetic --gpu_ids 0 --checkpoints_dir "$CK" --niter 1 --niter_decay 0 --print_freq 100)
for g in spade scgan; do
  for amp in none bf16 fp16; do
    [ "$g-$amp" = spade-fp16 ] && continue
    step "train_${g}_${amp}" 120 $PY train.py --name "${g}_${amp}" --netG "$g" --amp "$amp" "${common[@]}"
  done
  step "test_${g}" 60 $PY test.py --name "${g}_bf16" --checkpoints_dir "$CK" --results_dir "$CK/results"
done

# two DDP processes over NCCL; NCCL refuses two ranks on one device ("Duplicate GPU detected", seen on an
# H200 with NCCL 2.28.9), so this needs two GPUs
if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  step torchrun_nccl 120 torchrun --nproc_per_node 2 --master_port 29517 train.py --name ddp --netG scgan \
    --dataset_mode synthetic --gpu_ids 0,1 --checkpoints_dir "$CK" --niter 1 --niter_decay 0 --print_freq 100
else
  echo "=== torchrun_nccl: skipped (one GPU; NCCL needs one device per rank)"
fi

# both layout paths (the lookup and the convolution of the one-hot map), timed in turns in one process per model
# and phase, scgan and spade at 256x256 (ade20k settings), batch 1 and 8, fp32 and bf16: one markdown table each,
# OUT/bench_layout_fp32.md and OUT/bench_layout_bf16.md (each stopped after 240 s; not yet run on a GPU)
for precision in fp32 bf16; do
  TAIL=12 step "bench_layout_${precision}" 240 $PY -m benchmarks.bench_models --device cuda --sizes ade20k \
    --batches 1 8 --precision "$precision" --layout_paths lookup conv --models scgan spade --warmup 3 --repeats 10 \
    --out "$OUT/bench_layout_${precision}.md"
done
rm -rf "$CK"
