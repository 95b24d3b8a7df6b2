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
r"""Many pairs on many processes: the bundle's inference over a datalist sharded with ``torchrun``.

``bundle/configs/multi_gpu_inference.json`` (merged after ``inference.json``) runs one process per GPU (NCCL) or
per CPU process (gloo). Every process

1. takes its own shard of the pairs, :func:`shard_items` (disjoint, complete, no padding: with 3 pairs on 2
   processes rank 0 registers 2 pairs and rank 1 one; a rank may get none when there are fewer pairs than ranks),
2. writes into ONE output folder chosen once by rank 0 and broadcast to the others, :func:`distributed_output_dir`
   (``avsm_inference``, else ``avsm_inference_2``, ..., as :func:`~monai_avsm.engines.new_output_dir`),
3. writes each of its pairs' sub-folders (``RegistrationWriter``, so every pair folder is written by one rank),
4. sends the list of folders it wrote to rank 0, which checks that no pair was written twice and none was lost and
   merges the pairs' ``registration.json`` records into ``summary.csv`` and ``summary.json`` with the rank that
   wrote each pair, :func:`merge_shard_records`.

Evaluation (``multi_gpu_evaluate.json`` after ``evaluate.json``) is sharded the same way; each rank's
``RegistrationEvaluation`` keeps its rows and rank 0 writes ``metrics.csv``, ``summary.json`` and the plots of all
pairs, :func:`merge_shard_evaluation`. Its measures are MONAI cumulative metrics, which gather their values over all
ranks when the epoch ends, so every rank needs at least one pair there (:func:`require_shard`).

Without an initialized process group the three functions behave as on one process (rank 0 of 1), so they can be
called from single-process code and tests.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import socket
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from monai_avsm.data.files import new_output_dir

__all__ = [
    "dist_info",
    "shard_items",
    "distributed_output_dir",
    "merge_shard_records",
    "merge_shard_evaluation",
    "require_shard",
    "SUMMARY_COLUMNS",
]

T = TypeVar("T")

#: the leading columns of ``summary.csv``; every numeric value of a pair's record follows (``jacobian_folds``,
#: ``inverse_consistency_forward_inverse_mean_mm``, ``write_seconds``, ...).
SUMMARY_COLUMNS = ("pair", "rank", "moving", "fixed", "moving_label", "fixed_label", "files", "file_names")

# record entries that are not per-pair measures (geometry matrices, conventions text)
_SKIP = {"working_grid", "native_grid", "moving_native_grid", "affine_world_ras", "inverse_affine_world_ras"}


def _gather(local: Any, rank: int, world_size: int, dst: int) -> list[Any] | None:
    """Every rank's ``local`` as a list on rank ``dst`` (``torch.distributed.gather_object``; a collective), ``None``
    on the other ranks; ``[local]`` without a process group (one rank)."""
    if world_size <= 1:
        return [local] if rank == dst else None
    gathered: list[Any] | None = [None] * world_size if rank == dst else None
    dist.gather_object(local, gathered, dst=dst)
    return gathered if rank == dst else None


def dist_info(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)`` of this process: the given values, else those of the initialized default process
    group, else ``(0, 1)``.

    Raises:
        ValueError: ``world_size < 1`` or ``rank`` outside ``[0, world_size)``.
    """
    initialized = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialized else 1
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    rank, world_size = int(rank), int(world_size)
    if world_size < 1:
        raise ValueError(f"dist_info: 'world_size' must be >= 1, got {world_size}.")
    if not 0 <= rank < world_size:
        raise ValueError(f"dist_info: 'rank' must be in [0, {world_size}), got {rank}.")
    return rank, world_size


def shard_items(data: Sequence[T], rank: int | None = None, world_size: int | None = None) -> list[T]:
    """This rank's shard of ``data``: items ``rank, rank + world_size, rank + 2 * world_size, ...``.

    The shards of all ranks are disjoint and together hold every item once; nothing is padded or repeated (unlike
    ``torch.utils.data.DistributedSampler``, which repeats items to make the shards equal). It is the split of
    ``monai.data.partition_dataset(data, num_partitions=world_size, shuffle=False, even_divisible=False)`` and of
    MONAI's ``DistributedSampler(even_divisible=False, shuffle=False)``, and it also allows fewer items than ranks
    (the last ranks get an empty shard, where ``partition_dataset`` raises).

    Args:
        data: the items (e.g. the pairs of :func:`~monai_avsm.engines.pair_items`).
        rank, world_size: default: those of the process group (:func:`dist_info`).
    """
    rank, world_size = dist_info(rank, world_size)
    shard = list(data)[rank::world_size]
    logging.getLogger(__name__).info(f"rank {rank} of {world_size}: {len(shard)} of {len(data)} items")
    return shard


def distributed_output_dir(path: str | os.PathLike, src: int = 0) -> str:
    """One new output folder for all ranks: rank ``src`` creates it with
    :func:`~monai_avsm.engines.new_output_dir` (``path``, else ``path_2``, ``path_3``, ...) and broadcasts its name
    (``torch.distributed.broadcast_object_list``); every rank returns the same path. Without a process group: the
    folder of :func:`~monai_avsm.engines.new_output_dir`.

    The folder must be chosen once: each rank calling ``new_output_dir`` itself would create ``path`` on the first and
    ``path_2`` on a later rank (it finds ``path`` already written into) and split the results.

    Raises:
        RuntimeError: rank ``src`` could not create the folder (raised on every rank, with rank ``src``'s error, so
            that no rank waits for the others).
    """
    rank, world_size = dist_info()
    if world_size == 1:
        return new_output_dir(path)
    message: list[Any] = [None]
    if rank == src:
        try:
            message[0] = ("ok", new_output_dir(path))
        except OSError as e:
            message[0] = ("error", f"{type(e).__name__}: {e}")
    dist.broadcast_object_list(message, src=src)
    status, value = message[0]
    if status != "ok":
        raise RuntimeError(
            f"distributed_output_dir: rank {src} could not create the output folder {str(path)!r}: {value}"
        )
    return str(value)


def _folder_name(output_dir: str, entry: str | Mapping[str, Any]) -> str:
    folder = str(entry["folder"] if isinstance(entry, Mapping) else entry)
    full = folder if os.path.isabs(folder) else os.path.join(output_dir, folder)
    rel = os.path.relpath(os.path.abspath(full), os.path.abspath(output_dir))
    if rel.startswith(os.pardir) or os.sep in rel or rel == os.curdir:
        raise ValueError(f"merge_shard_records: pair folder {folder!r} is not a sub-folder of {output_dir!r}.")
    return rel


def _row(pair: str, rank: int, record: Mapping[str, Any]) -> dict[str, Any]:
    files = record.get("files") or {}
    row: dict[str, Any] = {
        "pair": pair,
        "rank": rank,
        **{k: record.get(k) for k in ("moving", "fixed", "moving_label", "fixed_label")},
        "files": len(files),
        "file_names": " ".join(sorted(files.values())),
    }
    for key, value in record.items():
        if key in _SKIP or key in row:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[key] = value
        elif isinstance(value, Mapping):  # jacobian, inverse_consistency: their numbers
            for sub, v in value.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    row[f"{key}_{sub}"] = v
    return row


def _pair_key(moving: Any, fixed: Any) -> tuple[str, str]:
    return os.path.realpath(str(moving)), os.path.realpath(str(fixed))


def _describe(pairs: Counter) -> str:
    return ", ".join(f"{m} -> {f}" + (f" ({n}x)" if n > 1 else "") for (m, f), n in pairs.items())


def _check_complete(
    caller: str, expected: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]], done: str
) -> None:
    """Raise ``RuntimeError`` naming the pairs of ``expected`` missing from ``rows`` or in them too often."""
    want = Counter(_pair_key(p["moving"], p["fixed"]) for p in expected)
    got = Counter(_pair_key(row["moving"], row["fixed"]) for row in rows)
    lost, extra = want - got, got - want
    if lost or extra:
        raise RuntimeError(
            f"{caller}: {sum(want.values())} pairs expected, {len(rows)} {done}; "
            + (f"not {done}: {_describe(lost)}. " if lost else "")
            + (f"{done} too often or not in the run: {_describe(extra)}." if extra else "")
        )


def _statistics(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, dict[str, float]]:
    stats = {}
    for c in columns:
        if c == "rank":
            continue
        vals = [float(r[c]) for r in rows if isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)]
        if len(vals) != len(rows):
            continue
        t = torch.tensor(vals, dtype=torch.float64)
        t = t[~torch.isnan(t)]
        if t.numel() == 0:
            stats[c] = {"mean": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan}
            continue
        stats[c] = {
            "mean": float(t.mean()),
            "sd": float(t.std(unbiased=False)),
            "min": float(t.min()),
            "max": float(t.max()),
        }
    return stats


def merge_shard_records(
    output_dir: str | os.PathLike,
    written: Sequence[str | Mapping[str, Any]],
    expected: Sequence[Mapping[str, Any]] | None = None,
    seconds: float | None = None,
    dst: int = 0,
) -> dict[str, Any] | None:
    """Gather the pair folders every rank wrote and, on rank ``dst``, merge their records into ``summary.csv`` and
    ``summary.json`` in ``output_dir``.

    Called by every rank after its shard is done (a collective, ``torch.distributed.gather_object``, so rank ``dst``
    merges only once all ranks have finished writing). ``summary.csv`` has one row per pair: :data:`SUMMARY_COLUMNS`
    (``rank``: the rank that wrote it; ``files``: how many files, ``file_names``: which) and every number of its
    ``registration.json`` (``jacobian_folds``, ``jacobian_fold_fraction``, ``inverse_consistency_*_mm``,
    ``write_seconds``, ...). ``summary.json`` has ``pairs``, ``world_size``, per rank (``ranks``: pairs, host,
    seconds), the mean/sd/min/max of every numeric column (``statistics``) and the rows (``records``).

    Args:
        output_dir: the shared output folder (:func:`distributed_output_dir`).
        written: this rank's pair folders (absolute, or relative to ``output_dir``), or the entries of
            ``RegistrationWriter.written`` (dicts with ``"folder"``).
        expected: the pairs of the whole run (all ranks, e.g. ``pair_items(...)``: dicts with ``"moving"`` and
            ``"fixed"``); when given, rank ``dst`` checks that each was written exactly once.
        seconds: this rank's time for its shard (e.g. ignite's ``evaluator.state.times["COMPLETED"]``), reported per
            rank.
        dst: the rank that merges.

    Returns:
        the summary (the content of ``summary.json``) on rank ``dst``, ``None`` on the other ranks.

    Raises:
        RuntimeError: a pair folder was reported by two ranks, a folder's ``registration.json`` is missing, or (with
            ``expected``) a pair of the run was not written or written more than once; the message names them.
        FileExistsError: ``output_dir`` already has a ``summary.csv`` or ``summary.json``.
    """
    out = str(output_dir)
    rank, world_size = dist_info()
    local = {
        "rank": rank,
        "folders": [_folder_name(out, w) for w in written],
        "host": socket.gethostname(),
        "seconds": None if seconds is None else round(float(seconds), 3),
    }
    gathered = _gather(local, rank, world_size, dst)
    if gathered is None:
        return None
    owner: dict[str, int] = {}
    duplicates = []
    for part in gathered:
        for name in part["folders"]:
            if name in owner:
                duplicates.append(f"{name!r} (ranks {owner[name]} and {part['rank']})")
            owner.setdefault(name, part["rank"])
    if duplicates:
        raise RuntimeError(f"merge_shard_records: pair folders written by more than one rank: {', '.join(duplicates)}.")
    rows = []
    for name, r in sorted(owner.items(), key=lambda kv: (kv[0], kv[1])):
        path = os.path.join(out, name, "registration.json")
        if not os.path.isfile(path):
            raise RuntimeError(f"merge_shard_records: rank {r} reported pair folder {name!r} but {path!r} is missing.")
        with open(path) as f:
            rows.append(_row(name, r, json.load(f)))
    if expected is not None:
        _check_complete("merge_shard_records", expected, rows, "written")
    columns: list[str] = list(SUMMARY_COLUMNS)
    for row in rows:
        columns += [c for c in row if c not in columns]
    per_rank = Counter(row["rank"] for row in rows)
    summary: dict[str, Any] = {
        "pairs": len(rows),
        "world_size": world_size,
        "output_dir": out,
        "ranks": [
            {"rank": p["rank"], "pairs": per_rank.get(p["rank"], 0), "host": p["host"], "seconds": p["seconds"]}
            for p in sorted(gathered, key=lambda p: p["rank"])
        ],
        "statistics": _statistics(rows, columns) if rows else {},
        "records": rows,
    }
    with open(os.path.join(out, "summary.csv"), "x", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out, "summary.json"), "x") as f:
        json.dump(summary, f, indent=2)
    spread = ", ".join(f"rank {p['rank']}: {p['pairs']}" for p in summary["ranks"])
    logging.getLogger(__name__).info(
        f"merged {len(rows)} pairs from {world_size} ranks ({spread}) into {out}/summary.csv, summary.json"
    )
    return summary


def merge_shard_evaluation(
    evaluation: Any, expected: Sequence[Mapping[str, Any]] | None = None, dst: int = 0
) -> dict[str, Any] | None:
    """Gather the rows of every rank's ``RegistrationEvaluation`` (created with ``summarize=False``) and, on rank
    ``dst``, write the evaluation of all pairs (``metrics.csv``, ``summary.json``, plots: ``evaluation.finish``).

    A collective: every rank calls it after its shard (also a rank with no pairs). Each row gets the ``rank`` that
    evaluated it; rows are put back in the order of the unsharded data (:func:`shard_items` gives rank ``r`` the
    items ``r, r + N, ...``).

    Args:
        evaluation: this rank's ``RegistrationEvaluation`` handler.
        expected: the pairs of the whole run (dicts with ``"moving"`` and ``"fixed"``); when given, rank ``dst``
            checks that each was evaluated exactly once.
        dst: the rank that writes the files.

    Returns:
        the evaluation summary on rank ``dst``, ``None`` on the other ranks.

    Raises:
        TypeError: ``evaluation`` has no ``rows`` and ``finish`` (not a ``RegistrationEvaluation``).
        RuntimeError: ``evaluation.summarize`` is on, so each rank would write its own files into the shared folder;
            or (with ``expected``) a pair was not evaluated or evaluated more than once.
    """
    if not (hasattr(evaluation, "rows") and callable(getattr(evaluation, "finish", None))):
        raise TypeError(
            f"merge_shard_evaluation: expected a RegistrationEvaluation handler, got {type(evaluation).__name__}."
        )
    if getattr(evaluation, "summarize", False):
        raise RuntimeError(
            "merge_shard_evaluation: the RegistrationEvaluation handler has summarize=True, so every rank already "
            "wrote its own summary; create it with summarize=False (multi_gpu_evaluate.json does)."
        )
    rank, world_size = dist_info()
    local = [{"pair": row["pair"], "rank": rank, **row} for row in evaluation.rows]
    gathered = _gather(local, rank, world_size, dst)
    if gathered is None:
        return None
    ordered = [(i, r, row) for r, rows in enumerate(gathered) for i, row in enumerate(rows)]
    rows = [row for _, _, row in sorted(ordered, key=lambda x: (x[0], x[1]))]
    if expected is not None:
        _check_complete("merge_shard_evaluation", expected, rows, "evaluated")
    spread = ", ".join(f"rank {r}: {len(part)}" for r, part in enumerate(gathered))
    logging.getLogger(__name__).info(f"merged the evaluation of {len(rows)} pairs from {world_size} ranks ({spread})")
    evaluation.rows = rows
    return evaluation.finish()


def require_shard(shard: Sequence[T], what: str = "this run") -> Sequence[T]:
    """``shard`` (this rank's items, :func:`shard_items`), or an error on a rank without items, for runs whose
    collectives every rank must join: MONAI's cumulative metrics (a sharded evaluation) gather their values over all
    ranks when the epoch ends, and a rank that has no pair would not run its evaluator and leave the others waiting.

    Raises:
        ValueError: ``shard`` is empty (fewer items than ranks); the message says so.
    """
    if len(shard) == 0:
        rank, world_size = dist_info()
        raise ValueError(
            f"require_shard: rank {rank} of {world_size} has no items for {what}: use at most as many processes as "
            "there are pairs (--nproc_per_node)."
        )
    return shard
