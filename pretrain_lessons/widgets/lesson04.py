"""Lesson 04 widget: type a sentence with [MASK], see the pretrained model's top-5 tokens and their probabilities."""
from __future__ import annotations

import html

import ipywidgets as widgets

from ..mlm import fill_mask


def fill_mask_html(model, tokenizer, sentence: str, k: int = 5) -> str:
    """An HTML table: for each [MASK] in the sentence, the k most likely tokens with probability bars."""
    if "[MASK]" not in sentence:
        return "<i>Put at least one [MASK] in the sentence.</i>"
    columns = []
    for n, options in enumerate(fill_mask(model, tokenizer, sentence, k=k), start=1):
        rows = "".join(
            f"<tr><td style='text-align:left;font-family:monospace'>{html.escape(token)}</td>"
            f"<td style='text-align:left'><span style='display:inline-block;height:10px;width:{max(1, int(160 * p))}px;"
            f"background:#3182bd'></span> {100 * p:.1f} %</td></tr>" for token, p in options)
        columns.append(f"<td style='vertical-align:top'><b>[MASK] {n}</b><table>{rows}</table></td>")
    return f"<table><tr>{''.join(columns)}</tr></table>"


def fill_mask_explorer(model, tokenizer, sentence: str = "the [MASK] was the best part of the movie .", k: int = 5):
    """A text box for a sentence with [MASK]s; below it, the model's top-k guesses for each mask."""
    box = widgets.Text(value=sentence, description="Sentence:", continuous_update=False,
                       layout=widgets.Layout(width="95%"))
    view = widgets.HTML(fill_mask_html(model, tokenizer, sentence, k))

    def redraw(change=None) -> None:
        view.value = fill_mask_html(model, tokenizer, box.value, k)

    box.observe(redraw, names="value")
    return widgets.VBox([box, view])
