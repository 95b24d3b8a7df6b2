"""Analysis: the ``register --fast`` guard's two candidates against the truth on scanner-space sets.

For every pair of each set given (``python -m monai_avsm.apps.scanner_space --out DIR --seed N``), the shipped
model's one pass and its pre-aligned input are each forced through ``monai_avsm.register(mode="fast")`` (the guard,
``apps.registration.keep_better_than_input``, is wrapped here to keep one candidate) and the written files are scored
as ``bench_registration.py --set scanner`` scores them (Dice of GM/WM, EPE against the truth). Five similarity
measures on the working grid (the guard's mk-LNCC and four others) are recorded for both candidates, to see which
would choose as the truth does. One JSON line per pair.

    python benchmarks/guard_check.py avsm_scanner avsm_scanner_s1 > guard.log
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FILES = ("moving", "fixed", "moving_label", "fixed_label", "fixed_mask", "truth")


def main(dirs: list[str]) -> None:
    import torch
    from _scanner_set import evaluate_outputs

    import monai_avsm
    import monai_avsm.apps.registration as registration
    from monai_avsm.losses.mk_lncc import MKLNCCLoss

    torch.set_num_threads(2)
    guard = registration.keep_better_than_input
    force: dict = {"kept": None}
    scores: dict = {}

    def lncc(windows, stride):
        w = [1.0 / len(windows)] * len(windows)
        return MKLNCCLoss(3, kernel_sizes=windows, kernel_weights=w, strides=stride, reduction="mean")

    def ncc(a, b):
        return -float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])

    measures = {
        "lncc_5_9_stride2": lambda a, b: float(lncc([5, 9], 2)(a, b)),
        "lncc_3_5_stride1": lambda a, b: float(lncc([3, 5], 1)(a, b)),
        "lncc_21": lambda a, b: float(lncc([21], 1)(a, b)),
        "global_ncc": ncc,
        "mse": lambda a, b: float(((a - b) ** 2).mean()),
    }

    def forced(pred, moving, fixed, mask=None):
        with torch.no_grad():
            warped = pred["warped"].detach().to(moving.dtype)
            for name, f in measures.items():
                scores[name] = {"network": f(warped, fixed), "prealignment": f(moving, fixed)}
        if force["kept"] == "network":
            return pred, {"kept": "network"}
        # the guard's own replacement by the input: a constant "result" scores worst (no local correlation)
        return guard({**pred, "warped": torch.full_like(moving, 1e3)}, moving, fixed, mask)

    registration.keep_better_than_input = forced
    for d in dirs:
        with open(os.path.join(d, "pairs.csv")) as f:
            pairs = list(csv.DictReader(f))
        for p in pairs:
            p = {k: (os.path.join(d, v) if v and k in FILES else v) for k, v in p.items()}
            row = {"set": d, "pair": p["pair"], "kind": p["kind"]}
            for kept in ("network", "prealignment"):
                force["kept"] = kept
                out = os.path.join(tempfile.mkdtemp(prefix="guard_check_"), "out")
                labels = {"moving_label": p["moving_label"]} if p["moving_label"] else {}
                res = monai_avsm.register(p["moving"], p["fixed"], out, mode="fast", progress=False, **labels)
                if res["record"]["registration"]["fast_selection"]["kept"] != kept:
                    raise RuntimeError(f"{p['pair']}: could not force the {kept} candidate")
                ev = evaluate_outputs(p, out)
                row[kept] = {k: ev.get(k) for k in ("dice", "epe_mm")}
            row["scores"] = dict(scores)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
