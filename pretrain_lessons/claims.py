"""Checked claims: a lesson states its conclusions as plain prose, and the cell after it checks each one.

    claim("test accuracy ≥ 92 %", acc >= 0.92, evidence=f"{acc:.2%}")
    claim("distillation beats training on labels alone", stats.compare(distilled, labels_only, labels=y))
    claim("LoRA and full fine-tuning: no measurable difference", cmp, expect="no measurable difference")

Each claim prints one line with its evidence. At `cpu` and `gpu` scale a claim the measurement no longer supports
raises ClaimFailed, so the notebook fails (under nbval, nbconvert and `make course`) instead of teaching a stale
sentence; at `smoke` scale, where the numbers mean nothing, it only reports. PRETRAIN_LESSONS_CLAIMS=enforce|report
overrides the scale's choice.
"""
from __future__ import annotations

import html
import os
from dataclasses import dataclass

import numpy as np

from . import scale
from .stats import VERDICTS, Comparison


class ClaimFailed(AssertionError):
    """A sentence of the lesson is no longer supported by its own measurement."""


@dataclass(frozen=True)
class Claim:
    """One checked sentence: its text, whether the measurement supports it, and the evidence."""

    text: str
    holds: bool
    evidence: str = ""

    def __str__(self) -> str:
        mark = "✔ holds" if self.holds else "✘ does not hold"
        return f"{mark}: {self.text}" + (f" — {self.evidence}" if self.evidence else "")

    def _ipython_display_(self) -> None:
        """Shown once, when it is checked: a claim on a cell's last line does not print itself a second time."""


MADE: list[Claim] = []   # the claims checked in this kernel, in order


def enforced() -> bool:
    """Whether a claim that does not hold stops the notebook (cpu and gpu scale, unless overridden)."""
    mode = os.environ.get("PRETRAIN_LESSONS_CLAIMS", "").strip().lower()
    if mode in ("enforce", "report"):
        return mode == "enforce"
    if mode:
        raise ValueError(f"PRETRAIN_LESSONS_CLAIMS={mode!r}: use 'enforce' or 'report'.")
    return scale.current() != "smoke"


def _holds(verdict, expect: str) -> tuple[bool, str]:
    if isinstance(verdict, Comparison):
        if expect not in VERDICTS:
            raise ValueError(f"expect must be one of {VERDICTS}; got {expect!r}")
        return verdict.verdict == expect, str(verdict)
    if isinstance(verdict, (bool, np.bool_)):
        return bool(verdict), ""
    if str(getattr(verdict, "dtype", "")) in ("bool", "torch.bool") and getattr(verdict, "ndim", 1) == 0:
        return bool(verdict), ""   # a 0-dimensional numpy or torch boolean
    raise TypeError(f"a claim's verdict is a bool (e.g. acc >= 0.92) or a stats.Comparison; got "
                    f"{type(verdict).__name__} {verdict!r}. Write the condition the sentence states.")


def claim(text: str, verdict, *, expect: str = "better", evidence: str | None = None) -> Claim:
    """Check one sentence of the lesson against a measurement; fail the notebook at cpu/gpu scale if it is wrong."""
    holds, shown = _holds(verdict, expect)
    made = Claim(text, holds, evidence if evidence is not None else shown)
    MADE.append(made)
    enforce = enforced()
    _show(made, enforce)
    if not holds and enforce:
        raise ClaimFailed(
            f"The lesson says: «{text}». This run's measurement does not support it ({made.evidence or 'condition false'}). "
            "If the run changed, re-run the notebook from the top; if the result really is different, rewrite the "
            "sentence in the Markdown cell above and this claim together.")
    return made


def _show(made: Claim, enforce: bool) -> None:
    note = ""
    if not made.holds and not enforce:
        note = (" (smoke scale: reported, not enforced — the numbers mean nothing here)" if scale.current() == "smoke"
                else " (PRETRAIN_LESSONS_CLAIMS=report: reported, not enforced)")
    text = str(made) + note
    try:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:
            colour = "#1b7837" if made.holds else "#b2182b"
            mark = "✔" if made.holds else "✘"
            evidence = f' <span style="color:#555">— {html.escape(made.evidence)}</span>' if made.evidence else ""
            display({"text/html": f'<div><span style="color:{colour};font-weight:600">{mark} claim</span> '
                                  f'{html.escape(made.text)}{evidence}{html.escape(note)}</div>',
                     "text/plain": text}, raw=True)
            return
    except ImportError:
        pass
    print(text)
