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
"""The one progress report of monai_avsm: a ``tqdm`` bar when tqdm is installed and the report is enabled, log lines
otherwise. The per-pair optimisations count iterations with it (:meth:`Progress.update`), ``register`` its steps
(:meth:`Progress.step`, :meth:`Progress.done`) and ``register_pairs`` its pairs. Needs neither torch nor MONAI
(tqdm is imported on first use).
"""

from __future__ import annotations

import logging

__all__ = ["Progress"]


def _tqdm():
    try:  # optional: a progress bar when tqdm is installed, log lines otherwise
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - depends on the environment
        return None
    return tqdm


class Progress:
    """Progress over ``total`` iterations or steps.

    Args:
        total: the number of iterations (or steps) expected.
        desc: the bar's title and the prefix of the log lines.
        enabled: show a bar (``tqdm`` when importable) and write the summary line; ``False`` is silent except for
            :meth:`step`'s log line.
        logger: where the log lines go (default: ``monai_avsm.optimization``'s logger).
        unit: the bar's unit (``"it"``: iterations; ``"step"``).
        leave: keep the bar on the screen when closed (the optimisations' per-level bars do not).
        step_prefix: the prefix of :meth:`step`'s log lines (default: ``desc``).
    """

    def __init__(
        self,
        total: int,
        desc: str,
        enabled: bool,
        logger: logging.Logger | None = None,
        unit: str = "it",
        leave: bool = False,
        step_prefix: str | None = None,
    ) -> None:
        self.total, self.desc, self.enabled = int(total), desc, bool(enabled)
        self.logger = logger if logger is not None else logging.getLogger("monai_avsm.optimization")
        self.step_prefix = desc if step_prefix is None else step_prefix
        tqdm = _tqdm() if self.enabled else None
        self.bar = tqdm(total=self.total, desc=desc, leave=leave, unit=unit) if tqdm is not None else None
        self.every = max(1, self.total // 10)

    def update(self, iteration: int, loss: float) -> None:
        """Iteration ``iteration`` (0-based) is done with objective ``loss``: the bar advances (or, without tqdm, an
        info line about every tenth iteration)."""
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.6g}")
        elif self.enabled and (iteration + 1) % self.every == 0:
            self.logger.info("%s: iteration %d/%d, loss %.6g", self.desc, iteration + 1, self.total, loss)

    def step(self, name: str) -> None:
        """A named step starts: an info line (always) and the bar's postfix."""
        self.logger.info(f"{self.step_prefix}: {name}")
        if self.bar is not None:
            self.bar.set_postfix_str(name)

    def done(self, postfix: str | None = None) -> None:
        """The current step is done: the bar advances (showing ``postfix``, when given)."""
        if self.bar is not None:
            self.bar.update(1)
            if postfix is not None:
                self.bar.set_postfix_str(postfix)

    def close(self, iterations: int | None = None, loss: float | None = None) -> None:
        """Close the bar; with ``iterations`` and ``loss`` (and ``enabled``) a summary info line."""
        if self.bar is not None:
            self.bar.close()
        if self.enabled and iterations is not None and loss is not None:
            self.logger.info("%s: %d iterations, loss %.6g", self.desc, iterations, loss)
