#!/usr/bin/env python
"""Does a checkpoint saved from MindCV's shufflenet_v2_x0_5 load into ours, with the same logits?

    python bench/check_mindcv_compat.py

MindCV (mindcv==0.3.0, private folder, see bench/_mindcv_env.py) builds its x0_5 with random
weights and BN statistics perturbed away from their init, saves a .ckpt; ours loads it with
`space.load_weights` (strict: no missing, unexpected or misshapen key), and both networks'
eval-mode logits on the same input must be allclose. Prints the result and writes
bench/results/mindcv_compat.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def _child(ckpt: str) -> dict:
    import mindspore as ms
    import numpy as np
    from mindcv.models import create_model as mindcv_model

    from space import create_model
    from common.runtime import configure

    configure("CPU", "graph")
    ms.set_seed(0)
    theirs = mindcv_model("shufflenet_v2_x0_5", num_classes=1000)
    rng = np.random.default_rng(0)
    for p in theirs.get_parameters():  # make BN statistics and affine terms non-trivial
        if p.name.endswith(("moving_mean", "moving_variance", "gamma", "beta")):
            value = rng.uniform(0.5, 1.5, p.shape) if p.name.endswith(("variance", "gamma")) \
                else rng.normal(0, 0.1, p.shape)
            p.set_data(ms.Tensor(value.astype(np.float32)))
    ms.save_checkpoint(theirs, ckpt)
    ours = create_model("shufflenet_v2_x0_5", num_classes=1000, checkpoint=ckpt)  # strict load
    theirs.set_train(False)
    ours.set_train(False)
    x = ms.Tensor(rng.standard_normal((2, 3, 224, 224)).astype(np.float32))
    a, b = ours(x).asnumpy(), theirs(x).asnumpy()
    keys_theirs = {p.name for p in theirs.get_parameters()}
    keys_ours = {p.name for p in ours.get_parameters()}
    return {"mindcv_keys": len(keys_theirs), "our_keys": len(keys_ours),
            "missing": sorted(keys_ours - keys_theirs), "unexpected": sorted(keys_theirs - keys_ours),
            "max_abs_diff": float(np.abs(a - b).max()), "logit_scale": float(np.abs(b).max()),
            "allclose": bool(np.allclose(a, b, rtol=1e-4, atol=1e-4)),
            "same_top1": bool((a.argmax(1) == b.argmax(1)).all())}


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2])))
        return 0
    from _mindcv_env import VERSION, child_env, ensure_mindcv

    path, error = ensure_mindcv()
    if path is None:
        result = {"ok": False, "error": error}
    else:
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "mindcv_x0_5.ckpt")],
                                  env=child_env(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            result = {"ok": False, "error": [ln for ln in proc.stderr.splitlines() if ln.strip()][-3:]}
        else:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            result["ok"] = result["allclose"] and not result["missing"] and not result["unexpected"]
    result["mindcv_version"] = VERSION
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "mindcv_compat.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
