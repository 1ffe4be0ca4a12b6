"""Lesson 05 widget: type a review and see how each fine-tuned classifier reads it."""
from __future__ import annotations

import html
from typing import Callable

import numpy as np

EXAMPLES = (
    "A gorgeous, funny and surprisingly moving film.",
    "Not bad at all: I expected to hate it and left smiling.",
    "The plot is thin, the jokes are stale and it goes on forever.",
    "It's not a great movie, but it's not a terrible one either.",
)


def probability_table(probs: dict[str, np.ndarray], labels: tuple[str, ...] = ("negative", "positive")) -> str:
    """HTML table: one row per model, its predicted label, and a bar for the probability of the last label."""
    rows = []
    for name, p in probs.items():
        p = np.asarray(p, dtype=float)
        k = int(p.argmax())
        colour = "#1b7837" if k == len(labels) - 1 else "#b2182b"
        width = int(round(100 * p[-1]))
        bar = (f'<div style="width:160px;background:#eee;display:inline-block;vertical-align:middle">'
               f'<div style="width:{width}%;background:{colour};height:12px"></div></div>')
        rows.append(f"<tr><td style='text-align:left'>{html.escape(name)}</td>"
                    f"<td style='color:{colour};font-weight:600'>{html.escape(labels[k])}</td>"
                    f"<td>{bar} {p[-1]:.2f}</td></tr>")
    head = f"<tr><th>model</th><th>prediction</th><th>P({html.escape(labels[-1])})</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def sentiment_box(predictors: dict[str, Callable[[list[str]], np.ndarray]], text: str = EXAMPLES[1],
                  labels: tuple[str, ...] = ("negative", "positive")):
    """A text box and example picker; each predictor maps a list of texts to class probabilities, shown per model."""
    import ipywidgets as w

    box = w.Textarea(value=text, layout=w.Layout(width="95%", height="60px"), continuous_update=False,
                     description="Review:")
    examples = w.Dropdown(options=[("(pick an example)", "")] + [(e, e) for e in EXAMPLES], value="",
                          description="Examples:", layout=w.Layout(width="95%"))
    result = w.HTML()

    def show(_=None):
        typed = box.value.strip()
        if not typed:
            result.value = "<i>Type a review above.</i>"
            return
        result.value = probability_table({name: fn([typed])[0] for name, fn in predictors.items()}, labels)

    def pick(change):
        if change["new"]:
            box.value = change["new"]

    box.observe(show, names="value")
    examples.observe(pick, names="value")
    show()
    return w.VBox([examples, box, result])
