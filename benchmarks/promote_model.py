# Copyright (c) 2026 The monai_avsm authors
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#     http://www.apache.org/licenses/LICENSE-2.0
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
"""Compare a trained candidate with the shipped model on the held-out scanner-space pairs, and ship it only if it is
better (issue 16: ``bundle/models/model.pt`` is replaced only by a model that beats the shipped one).

    python benchmarks/promote_model.py --candidate avsm_runs/synth/checkpoints/model.pt \\
        --candidate-config bundle/configs/inference_synth.json [--apply]

Both run ``monai-avsm register --fast`` (the model's one pass, each a new process, files to files, 2 threads) on the
scanner-space set of ``bench_registration.py --set scanner`` (held-out templates and pydeface's head in scanner
poses: nothing of it is seen in training). The candidate runs from a temporary bundle: the shipped bundle's configs
with ``inference.json`` updated by ``--candidate-config`` (a JSON object of the keys that differ: grid, spacing,
pre-alignment, network settings) and the candidate's weights. It *beats* the shipped model when its mean Dice over
the labelled pairs is higher, its mean end-point error is not higher and it has no folds. With ``--apply`` the
candidate's weights and ``inference.json`` are then copied into ``bundle/`` (git keeps the old ones) and the
comparison is written to ``bundle/docs/promotion.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def candidate_bundle(model: str, overrides: dict, out: str, bundle: str) -> str:
    """A bundle folder in ``out``: ``bundle``'s configs, ``inference.json`` updated by ``overrides``, ``model``."""
    dst = os.path.join(out, "candidate_bundle")
    shutil.copytree(os.path.join(bundle, "configs"), os.path.join(dst, "configs"))
    path = os.path.join(dst, "configs", "inference.json")
    with open(path) as f:
        config = json.load(f)
    unknown = sorted(k for k in overrides if k not in config and k not in ("prealignment",))
    if unknown:
        raise SystemExit(f"promote_model: --candidate-config has keys that inference.json does not: {unknown}")
    config.update({k: v for k, v in overrides.items() if not k.startswith("_")})
    with open(path, "w") as f:
        json.dump(config, f, indent=4)
    os.makedirs(os.path.join(dst, "models"))
    shutil.copy2(model, os.path.join(dst, "models", "model.pt"))
    return dst


def beats(candidate: dict, shipped: dict) -> tuple[bool, str]:
    """Whether ``candidate`` (a :func:`_scanner_set.summary` entry) beats ``shipped``, and why."""
    dice_c = candidate["dice_cross"] + candidate["dice_known"]
    dice_s = shipped["dice_cross"] + shipped["dice_known"]
    if not dice_c or candidate["failed"]:
        return False, f"the candidate failed on {candidate['failed']} pairs"
    mc, ms = statistics.mean(dice_c), statistics.mean(dice_s)
    ec = statistics.mean(candidate["epe_mm"]) if candidate["epe_mm"] else float("inf")
    es = statistics.mean(shipped["epe_mm"]) if shipped["epe_mm"] else float("inf")
    why = f"mean Dice {mc:.3f} vs {ms:.3f}, mean EPE {ec:.2f} vs {es:.2f} mm, folds {candidate['folds']}"
    return (mc > ms and ec <= es and not candidate["folds"]), why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidate", required=True, help="the candidate's weights (a state dict or checkpoint)")
    parser.add_argument("--candidate-config", required=True, help="JSON of the inference.json keys the model needs")
    parser.add_argument("--bundle", default=os.path.join(REPO, "bundle"), help="the shipped bundle")
    parser.add_argument("--scanner-dir", default="avsm_scanner", help="the scanner-space set (built if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pairs", type=int, default=0, help="only the first N pairs (default: all)")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--json", default=None, help="write the rows and the summary here")
    parser.add_argument("--apply", action="store_true", help="ship the candidate if it beats the shipped model")
    parser.add_argument("--from-json", default=None,
                        help="decide from the rows of a bench_registration.py --set scanner --json run instead of "
                             "running the pairs again (with --shipped-method and --candidate-method)")  # fmt: skip
    parser.add_argument("--shipped-method", default="avsm_fast", help="with --from-json: the shipped model's rows")
    parser.add_argument("--candidate-method", default="avsm_fast_new", help="with --from-json: the candidate's rows")
    args = parser.parse_args()
    for path in (args.candidate, args.candidate_config):
        if not os.path.isfile(path):
            raise SystemExit(f"promote_model: {path!r} does not exist")
    with open(args.candidate_config) as f:
        overrides = json.load(f)
    from _scanner_set import run_scanner_benchmark, summary

    tmp = tempfile.mkdtemp(prefix="avsm_promote_")
    cand = candidate_bundle(args.candidate, overrides, tmp, args.bundle)
    shipped_model = os.path.join(args.bundle, "models", "model.pt")
    modes = {
        "avsm_shipped": ["--fast", "--bundle", args.bundle, "--model", shipped_model],
        "avsm_candidate": ["--fast", "--bundle", cand, "--model", os.path.join(cand, "models", "model.pt")],
    }
    if args.from_json:
        with open(args.from_json) as f:
            rows = [r for r in json.load(f)["rows"] if r["method"] in (args.shipped_method, args.candidate_method)]
        rows = [
            {**r, "method": "avsm_shipped" if r["method"] == args.shipped_method else "avsm_candidate"} for r in rows
        ]
        if not rows:
            raise SystemExit(f"promote_model: {args.from_json!r} has no rows of {args.shipped_method!r} and "
                             f"{args.candidate_method!r}")  # fmt: skip
    else:
        args.work_dir = args.work_dir or os.path.join(tmp, "work")
        rows = run_scanner_benchmark(args, list(modes), modes)
    s = summary(rows, list(modes))
    ok, why = beats(s["avsm_candidate"], s["avsm_shipped"])
    verdict = "BEATS the shipped model" if ok else "does not beat the shipped model"
    print(f"\ncandidate {args.candidate}: {verdict} ({why})")
    result = {"candidate": os.path.abspath(args.candidate), "overrides": overrides, "beats": ok, "why": why,
              "summary": s, "rows": rows}  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    if args.apply and ok:
        for rel in (os.path.join("models", "model.pt"), os.path.join("configs", "inference.json")):
            shutil.copy2(os.path.join(cand, rel), os.path.join(args.bundle, rel))
        with open(os.path.join(args.bundle, "docs", "promotion.json"), "w") as f:
            json.dump({k: v for k, v in result.items() if k != "rows"}, f, indent=1)
        print(f"shipped: {args.bundle}/models/model.pt and configs/inference.json replaced")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
