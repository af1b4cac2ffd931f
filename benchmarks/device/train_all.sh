#!/bin/bash
# One device call: unpack, train the reader and both generators on SQuAD's training set at once on
# the GPU (bf16 autocast), then pack what comes back. LIMIT: seconds the trainings may run.
set -u
LIMIT=${LIMIT:-455}
DEV=${DEV:-cuda}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
R=$PWD
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -2
lscpu | grep -E "Model name|^CPU\(s\)" 
python3 .dev/unpack.py || exit 1  # .dev/ is what benchmarks/device/pack.py made
export PYTHONPATH=/tmp/site:$R
python3 -c "import torch,transformers;print('torch',torch.__version__,'transformers',transformers.__version__,'cuda',torch.cuda.is_available())"
python3 - <<'PY'
import torch,time
for dev,dt in (("cuda",torch.bfloat16),("cuda",torch.float32)):
    if dev=="cuda" and not torch.cuda.is_available(): continue
    a=torch.randn(4096,4096,device=dev,dtype=dt); b=torch.randn(4096,4096,device=dev,dtype=dt)
    for _ in range(3): a@b
    torch.cuda.synchronize(); t=time.perf_counter()
    for _ in range(20): a@b
    torch.cuda.synchronize(); s=(time.perf_counter()-t)/20
    print(f"torch.mm 4096^3 {dt}: {2*4096**3/s/1e12:.1f} TFLOP/s")
PY
D=../shared/datasets/squad/train-v1.0.json
COMMON="--data $D --held-in 5 --epochs 1 --threads 4 --device $DEV"
START=$(date +%s)
timeout $LIMIT python3 -m rag.cli train reader $COMMON --negatives 1 --no-onnx --out /tmp/runs/reader \
  --curve 2000,4000,8000,16000,32000,64000 > /tmp/reader.log 2>&1 &
timeout $LIMIT python3 -m rag.cli train generator --family encoder-decoder $COMMON --out /tmp/runs/encdec \
  --curve 2000,8000,16000 > /tmp/encdec.log 2>&1 &
timeout $LIMIT python3 -m rag.cli train generator --family decoder-only --attention prefix $COMMON --out /tmp/runs/deconly \
  --curve 2000,8000,16000 > /tmp/deconly.log 2>&1 &
while [ -n "$(jobs -r)" ]; do
  sleep 30; echo "--- $(( $(date +%s) - START )) s"
  for n in reader encdec deconly; do printf "%s: " $n; tr '\r' '\n' < /tmp/$n.log | grep -v "^\s*$" | tail -1 | cut -c1-150; done
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
done
wait
echo "=== trainings ended after $(( $(date +%s) - START )) s"
for n in reader encdec deconly; do echo "== $n"; tr '\r' '\n' < /tmp/$n.log | grep -v "it/s\]\|s/it\]\|^\s*$" | tail -12 | cut -c1-400; done
cd /tmp/runs
if [ -f reader/model/model.safetensors ]; then
  python3 - <<'PY'
import torch
from safetensors.torch import load_file, save_file
t = load_file("reader/model/model.safetensors")
save_file({k: (v.half() if v.dtype == torch.float32 else v).contiguous() for k, v in t.items()}, "/tmp/reader.fp16.safetensors")
PY
  split -b 15M -d /tmp/reader.fp16.safetensors $OUT/reader.fp16.part-
fi
tar czf $OUT/results.tar.gz --exclude='*.safetensors' --exclude=retrieval.json --exclude=checkpoint --exclude='.*' \
  */curve.jsonl */train-log.jsonl */model */curve /tmp/reader.log /tmp/encdec.log /tmp/deconly.log 2>/dev/null
ls -la $OUT
