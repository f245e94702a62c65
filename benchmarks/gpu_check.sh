#!/usr/bin/env bash
# The device check, one short script: the MetaDistil exactness tests on the GPU (float64), then the
# step benchmark at real size (BERT-base teacher -> 6-layer DistilBERT, random init) and at tiny size.
# Usage: DATA=<folder with sst2/train.tsv and vocab/> bash benchmarks/gpu_check.sh
set -euo pipefail
DATA=${DATA:-../shared/data}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
METADISTIL_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider tests/trainers/test_metadistil.py
python3 benchmarks/bench_steps.py --size real --device cuda --data "$DATA" --examples 2048
python3 benchmarks/bench_steps.py --size real --device cuda --data "$DATA" --examples 2048 --batch-size 64
python3 benchmarks/bench_steps.py --size tiny --device cuda --data "$DATA" --examples 2048
