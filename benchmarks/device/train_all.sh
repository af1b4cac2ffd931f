#!/bin/bash
# One device call: unpack, train the reader and both generators on SQuAD's training set at once on
# the GPU (bf16 autocast), evaluate every family's curve points on all of SQuAD dev part A as they
# appear (benchmarks/device/eval_families.py), then pack what comes back: the reader's weights in
# fp16 and results.tar.gz in $OUT; each generator's latest model, int8-stored, in /tmp/ship (a
# second call, on the still-warm machine, copies those parts to $OUT: one call returns 64 MiB).
# LIMIT_R / LIMIT_G: seconds the reader's / the generators' trainings may run; EVAL: seconds
# (from the trainings' start) until which evaluations wait for curve points.
set -u
LIMIT_R=${LIMIT_R:-440}
LIMIT_G=${LIMIT_G:-380}
EVAL=${EVAL:-460}
DEV=${DEV:-cuda}
SIZES=${SIZES:-2000,8000,16000,32000}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
R=$PWD
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
RUNS=${RUNS:-/tmp/runs}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
lscpu | grep -E "Model name|^CPU\(s\)"
python3 .dev/unpack.py || exit 1  # .dev/ is what benchmarks/device/pack.py made
export PYTHONPATH=/tmp/site:$R
python3 -c "import torch,transformers;print('torch',torch.__version__,'transformers',transformers.__version__,'cuda',torch.cuda.is_available())"
python3 - <<'PY'
import torch,time
if torch.cuda.is_available():
    for dt in (torch.bfloat16, torch.float32):
        a=torch.randn(4096,4096,device="cuda",dtype=dt); b=torch.randn(4096,4096,device="cuda",dtype=dt)
        for _ in range(3): a@b
        torch.cuda.synchronize(); t=time.perf_counter()
        for _ in range(20): a@b
        torch.cuda.synchronize(); s=(time.perf_counter()-t)/20
        print(f"torch.mm 4096^3 {dt}: {2*4096**3/s/1e12:.1f} TFLOP/s")
PY
D=../shared/datasets/squad/train-v1.0.json
COMMON="--data $D --held-in 5 --epochs 1 --threads 2 --device $DEV"
START=$(date +%s)
timeout $LIMIT_R python3 -m rag.cli train reader $COMMON --negatives 1 --no-onnx --out $RUNS/reader \
  --curve $SIZES > /tmp/reader.log 2>&1 &
timeout $LIMIT_G python3 -m rag.cli train generator --family encoder-decoder $COMMON --out $RUNS/encdec \
  --curve $SIZES > /tmp/encdec.log 2>&1 &
timeout $LIMIT_G python3 -m rag.cli train generator --family decoder-only --attention prefix $COMMON --out $RUNS/deconly \
  --curve $SIZES > /tmp/deconly.log 2>&1 &
UNTIL=$((START + EVAL))
EVALARGS="--inputs .dev/part-a.json.xz --out /tmp/families --device $DEV --until $UNTIL ${EVAL_LIMIT:+--limit $EVAL_LIMIT}"
# One process per family and size (generation is bound by Python, not the GPU: processes add up),
# each waiting for its curve point, each stopped a minute after the deadline whatever it is doing.
for f in reader:reader encoder-decoder:encdec decoder-only:deconly; do
  for n in ${SIZES//,/ }; do
    timeout $((UNTIL + 60 - START)) python3 benchmarks/device/eval_families.py $EVALARGS --family ${f%%:*} \
      --run $RUNS/${f##*:} --sizes $n > /tmp/eval-${f##*:}-$n.log 2>&1 &
  done
done
while [ -n "$(jobs -r)" ]; do
  sleep 30; echo "--- $(( $(date +%s) - START )) s"
  for n in reader encdec deconly; do printf "%s: " $n; tr '\r' '\n' < /tmp/$n.log | grep -v "^\s*$" | tail -1 | cut -c1-150; done
  cat /tmp/eval-*.log | grep " F1 " | tail -3
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
done
wait
echo "=== trainings and evaluations ended after $(( $(date +%s) - START )) s"
for n in reader encdec deconly; do echo "== $n"; tr '\r' '\n' < /tmp/$n.log | grep -v "it/s\]\|s/it\]\|^\s*$" | tail -8 | cut -c1-300; done
cat /tmp/eval-*.log | grep -v "^\s*$" | tail -30
cd $RUNS
if [ -f reader/model/model.safetensors ]; then
  python3 - <<'PY'
import torch
from safetensors.torch import load_file, save_file
t = load_file("reader/model/model.safetensors")
save_file({k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in t.items()}, "/tmp/reader.fp16.safetensors")
PY
  split -b 15M -d /tmp/reader.fp16.safetensors $OUT/reader.fp16.part-
fi
# Each generator's latest model (the epoch's end, else its largest curve point), weights int8-stored
# by benchmarks/ship_generator.py (as it ships them here).
mkdir -p /tmp/ship
for n in encdec deconly; do
  SRC=$(python3 - $n <<'PY'
import json, sys
from pathlib import Path
run = Path(sys.argv[1])
if (run / "model" / "rag-generator.json").exists():
    print(run / "model")
elif (run / "curve.jsonl").exists():
    points = [json.loads(x) for x in (run / "curve.jsonl").read_text().splitlines() if x.strip()]
    print(run / max(points, key=lambda p: p["questions"])["model"])
PY
)
  [ -n "$SRC" ] && python3 $R/benchmarks/ship_generator.py $SRC --name $n --target-root /tmp/ship \
    && tar cf /tmp/ship/$n.tar -C /tmp/ship $n && split -b 15M -d /tmp/ship/$n.tar /tmp/ship/$n.tar.part-
done
ls -la /tmp/ship
tar czf $OUT/results.tar.gz --exclude='*.safetensors' --exclude=retrieval.json --exclude='.*' \
  */curve.jsonl */train-log.jsonl */checkpoint/state.json */model */curve /tmp/families /tmp/*.log 2>/dev/null
ls -la $OUT
