"""Analysis: the ``register --fast`` guard's two candidates against the truth on scanner-space sets.

For every pair of each set given (``python -m monai_avsm.apps.scanner_space --out DIR --seed N``), the shipped
model's one pass and its pre-aligned input are each forced through ``monai_avsm.register(mode="fast")`` (the guard,
``apps.registration.keep_better_than_input``, is wrapped here to keep one candidate) and the written files are scored
as ``bench_registration.py --set scanner`` scores them (Dice of GM/WM, EPE against the truth). Five similarity
measures on the working grid (the guard's mk-LNCC and four others) are recorded for both candidates, to see which
would choose as the truth does (better by the truth: lower EPE where the true map is known, else higher Dice). One JSON
line per pair, then a table of the guard's choice without a margin and with ``register --fast``'s
(``FAST_MIN_IMPROVEMENT``).

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

    def forced(pred, moving, fixed, mask=None, min_improvement=0.0):
        with torch.no_grad():
            warped = pred["warped"].detach().to(moving.dtype)
            for name, f in measures.items():
                scores[name] = {"network": f(warped, fixed), "prealignment": f(moving, fixed)}
        if force["kept"] == "network":
            return pred, {"kept": "network"}
        # the guard's own replacement by the input: a constant "result" scores worst (no local correlation)
        return guard({**pred, "warped": torch.full_like(moving, 1e3)}, moving, fixed, mask, min_improvement)

    registration.keep_better_than_input = forced
    margin, rows = registration.FAST_MIN_IMPROVEMENT, []
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
            g = scores["lncc_5_9_stride2"]
            rel = (g["prealignment"] - g["network"]) / abs(g["prealignment"])
            row["guard"] = {"improvement": rel, "kept_margin_0": "network" if rel > 0 else "prealignment",
                            f"kept_margin_{margin:g}": "network" if rel > margin else "prealignment"}  # fmt: skip
            row["truth"] = _truth(row)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n| set | pair | kind | better by the truth | guard's relative improvement | guard, margin 0 | "
          f"guard, margin {margin:g} (register --fast) |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for r in rows:
        g = r["guard"]
        print(
            f"| {os.path.basename(r['set'])} | {r['pair']} | {r['kind']} | {r['truth']} | {g['improvement']:+.4f} | "
            f"{g['kept_margin_0']} | {g[f'kept_margin_{margin:g}']} |"
        )
    for key in ("kept_margin_0", f"kept_margin_{margin:g}"):
        agree = sum(r["guard"][key] == r["truth"] for r in rows)
        print(f"{key}: agrees with the truth on {agree} of {len(rows)} pairs")


def _truth(row: dict) -> str:
    """The better candidate: by EPE where there is a true map, else by Dice."""
    n, p = row["network"], row["prealignment"]
    if n.get("epe_mm") is not None and p.get("epe_mm") is not None:
        return "network" if n["epe_mm"] < p["epe_mm"] else "prealignment"
    return "network" if n["dice"] > p["dice"] else "prealignment"


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
