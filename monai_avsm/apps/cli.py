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
"""The ``monai-avsm`` command line (installed with the package; also ``python -m monai_avsm``).

::

    monai-avsm register MOVING FIXED --out DIR [--moving-label L] [--fixed-label L] [--refine N] [--mask M]
                        [--device cpu|cuda] [--bundle DIR] [--model FILE] [--overwrite] [--preview] ...
    monai-avsm register --pairs pairs.csv --out DIR [...]
    monai-avsm apply TRANSFORM [TRANSFORM ...] IMAGE --reference REF --out FILE [--label] [--overwrite]
    monai-avsm jacobian FIELD [--out FILE] [--mask M]

Each sub-command is a thin layer over :func:`monai_avsm.register` (:func:`monai_avsm.register_pairs`),
:func:`monai_avsm.apply_transforms` and :func:`monai_avsm.jacobian_summary`. Errors are printed as one line naming the
problem (exit status 1); ``--debug`` shows the traceback. ``--help``, ``--version`` and every argument or input-file
error answer before torch or MONAI are imported (this module imports neither).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

__all__ = ["main", "build_parser"]

_EPILOG_REGISTER = """\
examples:
  monai-avsm register moving.nii.gz fixed.nii.gz --out result
  monai-avsm register moving.nii.gz fixed.nii.gz --out result --moving-label moving_seg.nii.gz \\
      --fixed-label fixed_seg.nii.gz --fast --refine 20
  monai-avsm register moving.nii.gz fixed.nii.gz --out result --mask fixed_brain_mask.nii.gz

  monai-avsm register --pairs pairs.csv --out results     # columns moving,fixed[,moving_label,fixed_label,mask,name]

outputs (in --out, a new folder, written when complete):
  warped.nii.gz, warped_label.nii.gz     moving image / label on the fixed image's grid
  displacement_field.nii                 forward transform (ITK/ANTs warp, world mm, includes the affine)
  affine.tfm, affine.mat                 the affine part alone
  inverse_displacement_field.nii, inverse_affine.*   the inverse transformation
  registration.json                      metrics (folds = det J <= 0), timings, device, versions, settings
  optional: --inverse-images (inverse_warped*), --separable (deformable_field*), --jacobian
  (jacobian_determinant.nii.gz), --preview (preview.png), --compress (.nii.gz fields), --no-inverse

apply with ANTs:
  antsApplyTransforms -d 3 -i moving.nii.gz -r fixed.nii.gz -t result/displacement_field.nii -o out.nii.gz
"""


def _version() -> str:
    from monai_avsm._version import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monai-avsm",
        description="AVSM image registration (joint affine + vSVF, CVPR 2019) with the shipped MONAI bundle.",
        epilog="'monai-avsm COMMAND --help' for each command; the guide from install to a result in 3D Slicer or ANTs "
        "is docs/register_your_own_images.md.",
    )
    parser.add_argument("--version", action="version", version=f"monai-avsm {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    reg = sub.add_parser(
        "register",
        help="register one pair (or a CSV of pairs) and write the transforms, warped images and a report",
        description="Register MOVING to FIXED (any size, spacing and orientation; the results lie on the images' own "
        "grids). By default the accurate path: an initial alignment from any orientation, then vSVF optimisation at "
        "the fixed image's resolution (about 15 s for a brain pair at 1.2-1.5 mm on 2 CPU cores). --fast is the "
        "shipped AVSM model's one pass on its working grid after the initial alignment (about 6 s; 2 s with "
        "--prealign center_of_mass), once the model's trace is cached (the first run for a new working grid builds "
        "it: a few seconds more).",
        epilog=_EPILOG_REGISTER,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reg.add_argument(
        "--fast",
        action="store_true",
        help="the network in one pass (the paper's AVSM) after the model's pre-alignment (see --prealign; ~6 s for a "
        "brain pair once the trace is cached) instead of the default accurate path (initial alignment from any "
        "orientation + vSVF optimisation at the fixed image's resolution)",
    )
    reg.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        metavar="S",
        help="wall-time budget of the accurate path's optimisation (later levels are skipped once spent)",
    )
    reg.add_argument(
        "--prealign",
        choices=("center_of_mass", "initial_alignment"),
        default=None,
        help="alignment before the network (--fast): initial_alignment (rotation search + affine, ~1.5 s; recovers "
        "scanner poses; the shipped model's setting: it was trained on pairs after it) or center_of_mass "
        "(milliseconds; for pairs that already share a pose)",
    )
    network = reg.add_mutually_exclusive_group()
    network.add_argument(
        "--network",
        action="store_true",
        help="accurate path: also run the network after the initial alignment (its affine is one more candidate, its "
        "map the optimisation's start when it scores better than the identity); with the shipped model this lowered "
        "the accuracy on scanner-space brains, so it is for a model trained on images like yours (--model)",
    )
    network.add_argument(
        "--no-network",
        action="store_true",
        help="accurate path without the network (the default; kept for scripts that pass it): no model is loaded",
    )
    reg.add_argument(
        "--similarity",
        choices=("lncc", "mi"),
        default="lncc",
        help="similarity of the accurate path: lncc (mk-LNCC, same contrast; default) or mi (global mutual "
        "information, for other contrasts or modalities; several times slower)",
    )
    reg.add_argument("moving", nargs="?", help="moving image file (NIfTI, NRRD, MHA, ...)")
    reg.add_argument("fixed", nargs="?", help="fixed image file")
    reg.add_argument("--out", required=True, help="output folder (new or empty; see --overwrite)")
    reg.add_argument(
        "--pairs",
        metavar="CSV",
        help="register every pair of a CSV file (header: moving,fixed[,moving_label,fixed_label,mask,name]; relative "
        "paths from the CSV's folder) with the model loaded once: one sub-folder per pair and summary.csv/.json in "
        "--out; a failing pair is reported and skipped",
    )
    reg.add_argument("--moving-label", help="label map of the moving image (warped with nearest neighbour)")
    reg.add_argument("--fixed-label", help="label map of the fixed image (with --moving-label: Dice in the report)")
    reg.add_argument(
        "--refine",
        type=int,
        default=None,
        metavar="N",
        help="with --fast: L-BFGS refinement iterations after the network (never worse; ~0.25 s each on 2 CPU cores "
        "at the model's grid). Default 0, or 20 with --mask",
    )
    reg.add_argument("--mask", help="binary mask of the fixed image: the refinement's similarity counts only inside it")
    reg.add_argument(
        "--spacing",
        type=float,
        default=None,
        metavar="MM",
        help="with --fast: the working grid's voxel size (default: the model's, 2 mm: 96x112x96 voxels along the "
        "world's RAS axes about the fixed image's centre; the model was trained at 2 mm)",
    )
    reg.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda when available)")
    reg.add_argument("--bundle", help="bundle folder (default: the shipped bundle)")
    reg.add_argument("--model", help="weights to use instead of the bundle's models/model.pt (e.g. fine-tuned)")
    reg.add_argument("--overwrite", action="store_true", help="write into a non-empty --out, replacing its files")
    reg.add_argument("--quiet", action="store_true", help="no progress bar or log lines; print only the JSON summary")
    reg.add_argument("--no-inverse", action="store_true", help="skip the inverse field and affine (saves ~0.2 s)")
    reg.add_argument(
        "--inverse-images",
        action="store_true",
        help="also the fixed image and label warped onto the moving grid (inverse_warped*, ~0.3 s)",
    )
    reg.add_argument(
        "--separable", action="store_true", help="also the deformable parts alone, ANTs SyN's form (~0.3 s)"
    )
    reg.add_argument(
        "--jacobian", action="store_true", help="write the det J image (~0.1 s; statistics are always in the report)"
    )
    reg.add_argument("--preview", action="store_true", help="write preview.png of the native-grid result (~1 s)")
    reg.add_argument(
        "--compress", action="store_true", help="gzip the displacement fields (.nii.gz: ~10 %% smaller, ~0.9 s each)"
    )
    reg.add_argument(
        "--no-model-cache",
        action="store_true",
        help="do not use or fill the cache of traced networks ($MONAI_AVSM_CACHE_DIR or ~/.cache/monai_avsm)",
    )

    app = sub.add_parser(
        "apply",
        help="apply written transforms to another image (as antsApplyTransforms)",
        description="Warp IMAGE onto the grid of --reference with the TRANSFORMs, listed in ANTs order (the points of "
        "the reference grid go through the first one first; '[affine.mat,1]' inverts an affine file). "
        "A TRANSFORM is a displacement field (.nii.gz, ...), an affine file (.tfm, .mat, .txt) or a folder "
        "written by 'monai-avsm register' (its displacement_field).",
        epilog="examples:\n"
        "  monai-avsm apply result other_moving.nii.gz --reference fixed.nii.gz --out other_warped.nii.gz\n"
        "  monai-avsm apply result/displacement_field.nii seg.nii.gz --reference fixed.nii.gz --out seg_w.nii.gz "
        "--label\n"
        "  monai-avsm apply result/inverse_displacement_field.nii fixed_seg.nii.gz --reference moving.nii.gz "
        "--out seg_on_moving.nii.gz --label\n"
        "  monai-avsm apply result/deformable_field.nii result/affine.mat moving.nii.gz --reference fixed.nii.gz "
        "--out w.nii.gz\n"
        "  monai-avsm apply '[result/affine.mat,1]' result/inverse_deformable_field.nii fixed.nii.gz "
        "--reference moving.nii.gz --out fixed_on_moving.nii.gz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    app.add_argument("items", nargs="+", metavar="TRANSFORM [TRANSFORM ...] IMAGE", help="transforms, then the image")
    app.add_argument("--reference", required=True, help="image whose grid the output takes")
    app.add_argument("--out", required=True, help="output file (never overwritten without --overwrite)")
    app.add_argument("--label", action="store_true", help="nearest-neighbour interpolation (label maps)")
    app.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    jac = sub.add_parser(
        "jacobian",
        help="statistics of the Jacobian determinant of a displacement field (folds, min, max)",
        description="Print the Jacobian determinant statistics of a displacement field (or a register output "
        "folder) as JSON; optionally write the determinant image.",
    )
    jac.add_argument("field", help="displacement field file, or a folder written by 'monai-avsm register'")
    jac.add_argument("--out", help="write the determinant image to this new file")
    jac.add_argument("--mask", help="binary mask on the field's grid: statistics inside it only")
    jac.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser


def _summary(result: dict) -> dict:
    m = result["metrics"]
    out = {"output_dir": result["output_dir"], "device": result["device"], "timings": result["timings"]}
    for key in ("dice_identity", "dice_affine", "dice_avsm"):
        if key in m:
            out[key] = round(m[key], 4)
    if m.get("jacobian"):
        out["folds"] = m["jacobian"]["folds"]
    if m.get("inverse_consistency"):
        out["inverse_consistency_mean_mm"] = round(m["inverse_consistency"]["forward_inverse_mean_mm"], 4)
    return out


def _outputs(args) -> dict[str, bool]:
    return {
        "inverse": not args.no_inverse,
        "inverse_images": args.inverse_images,
        "separable": args.separable,
        "jacobian": args.jacobian,
        "preview": args.preview,
        "compress": args.compress,
    }


def _check_register_args(parser: argparse.ArgumentParser, args) -> None:
    """Argument and input-file errors before any heavy import (nibabel reads the NIfTI headers only)."""
    from monai_avsm.data.files import check_image_file

    if args.no_network and (args.fast or args.prealign is not None):
        parser.error("register: --no-network is the accurate path without the network (not with --fast or --prealign)")
    if args.network and args.fast:
        parser.error("register: --network belongs to the accurate path (--fast is the network's one pass)")
    if args.prealign is not None and not (args.fast or args.network):
        parser.error("register: --prealign is the network's pre-alignment: give it with --fast or --network")

    if args.pairs is not None:
        if not args.fast and (args.refine or args.spacing is not None):
            parser.error("register: --refine and --spacing belong to --fast (the network's path)")
        if args.moving is not None or args.fixed is not None:
            parser.error("register: give MOVING FIXED or --pairs CSV, not both")
        for flag in ("moving_label", "fixed_label", "mask"):
            if getattr(args, flag) is not None:
                parser.error(f"register: --{flag.replace('_', '-')} is a column of the --pairs CSV, not an option")
        if not os.path.isfile(args.pairs):
            raise FileNotFoundError(f"register: the pairs file {args.pairs!r} does not exist.")
        return
    if args.moving is None or args.fixed is None:
        parser.error("register: MOVING and FIXED are required (or --pairs CSV)")
    if args.refine is not None and args.refine < 0:
        raise ValueError(f"register: 'refine' must be >= 0 iterations, got {args.refine}.")
    if not args.fast and (args.refine or args.spacing is not None):
        parser.error("register: --refine and --spacing belong to --fast (the network's path)")
    if args.fast and args.similarity != "lncc":
        parser.error("register: --similarity belongs to the accurate path (not --fast)")
    for name in ("moving", "fixed", "moving_label", "fixed_label", "mask"):
        if getattr(args, name) is not None:
            check_image_file(getattr(args, name), name, "register")
    out = args.out
    if os.path.isfile(out):
        raise FileExistsError(f"register: the output {out!r} exists and is a file; give a new folder name.")
    if os.path.isdir(out) and any(os.scandir(out)) and not args.overwrite:
        raise FileExistsError(
            f"register: the output folder {out!r} exists and is not empty; give a new folder, or --overwrite to "
            "replace the files in it."
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    try:
        if args.command == "register":
            _check_register_args(parser, args)
            common = dict(
                refine=args.refine,
                spacing=args.spacing,
                device=args.device,
                bundle_dir=args.bundle,
                model_path=args.model,
                overwrite=args.overwrite,
                progress=not quiet,
                outputs=_outputs(args),
                mode="fast" if args.fast else "accurate",
                max_seconds=args.max_seconds,
                similarity=args.similarity,
                prealignment=args.prealign,
                use_network=bool(args.fast or args.network),
            )
            if args.pairs is not None:
                from monai_avsm.apps.registration import register_pairs

                summary = register_pairs(args.pairs, args.out, **common)
                print(
                    json.dumps(
                        {k: summary[k] for k in ("output_dir", "failed", "summary_csv", "total_seconds")}, indent=2
                    )
                )
                return 1 if summary["failed"] else 0
            from monai_avsm.apps.registration import register

            result = register(
                args.moving,
                args.fixed,
                args.out,
                moving_label=args.moving_label,
                fixed_label=args.fixed_label,
                mask=args.mask,
                cache=not args.no_model_cache,
                **common,
            )
            print(json.dumps(_summary(result), indent=2))
        elif args.command == "apply":
            if len(args.items) < 2:
                parser.error("apply needs at least one TRANSFORM and the IMAGE")
            from monai_avsm.apps.apply import apply_transforms

            path = apply_transforms(
                args.items[:-1], args.items[-1], args.reference, args.out, label=args.label, overwrite=args.overwrite
            )
            print(path)
        else:
            from monai_avsm.apps.jacobian import jacobian_summary

            print(json.dumps(jacobian_summary(args.field, args.out, args.mask, overwrite=args.overwrite), indent=2))
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as e:
        if args.debug:
            raise
        print(f"monai-avsm {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
