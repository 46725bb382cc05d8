#!/usr/bin/env bash
# The GPU check, in one command (a few minutes): training and prediction speed on the device,
# and a short train -> predict -> objects round trip. Prints one JSON.
#
#   bash benchmarks/gpu_check.sh               # on a CUDA machine
#   bash benchmarks/gpu_check.sh --device cpu  # a dry run anywhere
#
# Python: $PYTHON if set, else .venv/bin/python, else python3 with this package installed
# (pip install -e .) or, where nothing can be installed (no network), with src/ on the path:
# the machine's torch is used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
if [ "${1:-}" = "--device" ]; then DEVICE="$2"; fi
PY=${PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then
        PY=.venv/bin/python
    else
        PY=python3
        $PY -c "import paintseg" 2>/dev/null || $PY -m pip install -q -e . 2>/dev/null ||
            export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi
export PYTHONUNBUFFERED=1
$PY -c "import paintseg.learn, torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >&2
train=$($PY benchmarks/train_speed.py --device "$DEVICE" --rounds 3 --round 1.5 --no-contention)
predict=$($PY benchmarks/predict_speed.py --device "$DEVICE" --repeats 3 --no-memory)
trip=$($PY benchmarks/gpu_round_trip.py --device "$DEVICE" --seconds 20)
$PY - "$train" "$predict" "$trip" <<'PYEOF'
import json, sys
import torch
train, predict, trip = (json.loads(a) for a in sys.argv[1:])
print(json.dumps({
    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    "torch": torch.__version__,
    "train_speed": train, "predict_speed": predict["speed"], "round_trip": trip,
}, indent=1))
PYEOF
