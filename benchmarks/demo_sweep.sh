#!/usr/bin/env bash
# How the synthetic demo's settings were chosen: train the bundled segmenter, then train
# several demo variants side by side (one process each; a GPU makes it quick, the numbers of images are those
# of the CPU demo) with the segmenter's mIoU on the synthesized test images after every epoch, and print each
# variant's mIoU curve next to the real images' mIoU.
#   bash benchmarks/demo_sweep.sh OUTDIR [GPU_IDS]
set -u
OUT=${1:-demo_sweep_out}
GPU=${2:-0}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
CK=$(mktemp -d)
$PY -m tools.train_segmenter --dataset_mode synthetic --out "$CK/seg.pt" --iterations "${SEG_ITERS:-400}" 2>&1 | tail -1 | tee "$OUT/segmenter.log"

run() {  # run NAME OPTIONS...
  local name=$1; shift
  env ${RUN_THREADS:+OMP_NUM_THREADS=$RUN_THREADS} $PY train.py --name "$name" --dataset_mode synthetic --gpu_ids "$GPU" --checkpoints_dir "$CK" --eval_freq 1 \
    --eval_metrics miou --seg_model "$CK/seg.pt" --eval_how_many 100 --print_freq 1000 "$@" >"$OUT/$name.log" 2>&1
  echo "== $name ($*): exit $?"
  $PY - "$CK/$name/eval_log.jsonl" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    print(f"  epoch {e['epoch']:2d}: mIoU {e['mIoU']:.3f} / real {e['real_mIoU']:.3f} = {e['mIoU'] / e['real_mIoU']:.2f}")
PYEOF
}
while read -r name options; do
  [ -z "$name" ] && continue
  run "$name" $options > "$OUT/$name.summary" &
done < "${SWEEP:-/dev/stdin}"
wait
cat "$OUT"/*.summary
rm -rf "$CK"
