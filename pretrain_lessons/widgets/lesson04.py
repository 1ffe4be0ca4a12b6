"""Lesson 04 widget: type a sentence with [MASK], see a model's top-5 tokens and their probabilities; optionally the
rank and probability of a word you expect, and a choice between the finished model and its training snapshots."""
from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as widgets

from ..mlm import fill_mask, rank_of


def fill_mask_html(model, tokenizer, sentence: str, k: int = 5, expected: str = "") -> str:
    """An HTML table: for each [MASK] in the sentence, the k most likely tokens with probability bars, and (if a word
    is expected) that word's rank among all the tokens of the vocabulary and its probability."""
    if "[MASK]" not in sentence:
        return "<i>Put at least one [MASK] in the sentence.</i>"
    expected = expected.strip()
    ranks = rank_of(model, tokenizer, sentence, expected) if expected else None
    columns = []
    for n, options in enumerate(fill_mask(model, tokenizer, sentence, k=k), start=1):
        rows = "".join(
            f"<tr><td style='text-align:left;font-family:monospace'>{html.escape(token)}</td>"
            f"<td style='text-align:left'><span style='display:inline-block;height:10px;width:{max(1, int(160 * p))}px;"
            f"background:#3182bd'></span> {100 * p:.1f} %</td></tr>" for token, p in options)
        if ranks:
            rank, p = ranks[n - 1]
            rows += (f"<tr><td colspan='2' style='text-align:left'>'{html.escape(expected)}': rank {rank:,} of "
                     f"{len(tokenizer):,}, {100 * p:.2f} %</td></tr>")
        columns.append(f"<td style='vertical-align:top'><b>[MASK] {n}</b><table>{rows}</table></td>")
    note = ""
    if expected and ranks is None:
        pieces = " ".join(tokenizer.tokenize(expected))
        note = (f"<p><i>'{html.escape(expected)}' is not one token of this vocabulary (it is cut into "
                f"{html.escape(pieces)}); one [MASK] stands for one piece.</i></p>")
    return f"<table><tr>{''.join(columns)}</tr></table>{note}"


def _load(choice):
    """A model, or a checkpoint folder loaded with from_pretrained."""
    if isinstance(choice, (str, Path)):
        from transformers import BertForMaskedLM

        return BertForMaskedLM.from_pretrained(choice).eval()
    return choice


def fill_mask_explorer(model, tokenizer, sentence: str = "the [MASK] was the best part of the movie .", k: int = 5,
                       expected: str = ""):
    """A text box for a sentence with [MASK]s and one for a word you expect there; below them, the model's top-k
    guesses for each mask and the expected word's rank and probability.

    `model` is a masked-language model, or a dict {label: model or checkpoint folder} to choose from in a menu
    (a folder is loaded the first time it is chosen). All of them must share `tokenizer`.
    """
    choices = model if isinstance(model, dict) else {"model": model}
    loaded: dict = {}

    def current():
        label = menu.value
        if label not in loaded:
            loaded[label] = _load(choices[label])
        return loaded[label]

    menu = widgets.Dropdown(options=list(choices), description="Model:", layout=widgets.Layout(width="60%"))
    box = widgets.Text(value=sentence, description="Sentence:", continuous_update=False,
                       layout=widgets.Layout(width="95%"))
    word = widgets.Text(value=expected, description="Expect:", placeholder="a word you expect at the [MASK]",
                        continuous_update=False, layout=widgets.Layout(width="60%"))
    view = widgets.HTML(fill_mask_html(current(), tokenizer, sentence, k, expected))

    def redraw(change=None) -> None:
        view.value = fill_mask_html(current(), tokenizer, box.value, k, word.value)

    for control in (menu, box, word):
        control.observe(redraw, names="value")
    panel = widgets.VBox(([menu] if len(choices) > 1 else []) + [box, word, view])
    panel.menu, panel.sentence, panel.expected, panel.view = menu, box, word, view
    return panel
