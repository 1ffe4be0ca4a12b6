"""Lesson 05 widget and probes: type a review and see how each classifier reads it — and why, for the bag of words.

`sentiment_table()` is static HTML (it renders anywhere, on GitHub too); `sentiment_box()` is the live version
with a text box. `NEGATION_PROBES` is a small hand-written set of reviews whose sentiment turns on a negation.
"""
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

# (review, label: 1 fresh / 0 rotten). Written for this lesson; each pair flips the meaning with a negation.
NEGATION_PROBES = (
    ("Not bad at all.", 1),
    ("Bad, really bad.", 0),
    ("This is not a good movie.", 0),
    ("This is a good movie.", 1),
    ("Never boring for a second.", 1),
    ("Boring from start to finish.", 0),
    ("I did not enjoy a single minute of it.", 0),
    ("I enjoyed every single minute of it.", 1),
    ("Not funny, not clever, not worth your time.", 0),
    ("Funny, clever and worth your time.", 1),
    ("Nothing about it works.", 0),
    ("Everything about it works.", 1),
    ("Hardly a masterpiece, and often dull.", 0),
    ("I can't say I didn't like it: I loved it.", 1),
    ("The cast is not without charm, and the story never drags.", 1),
    ("It doesn't deserve the praise it got.", 0),
    ("No one who sees it will be disappointed.", 1),
    ("It is not the disaster I feared; it is a delight.", 1),
    ("Don't waste your money on this one.", 0),
    ("You won't regret seeing it.", 1),
)


def bow_reasons(pipeline, text: str, k: int = 4) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """The n-grams of `text` that push a bag-of-words logistic regression most towards each class.

    Each present feature adds its weight (times its scaling, for an NB-weighted pipeline) to the logit of the
    last class: (top positive contributions, top negative ones), as (n-gram, contribution) pairs.
    """
    vectorizer, classifier = pipeline.steps[0][1], pipeline.steps[-1][1]
    x = vectorizer.transform([text])
    for _, step in pipeline.steps[1:-1]:
        x = step.transform(x)
    x = x.tocsr()
    names = vectorizer.get_feature_names_out()
    weights = classifier.coef_[0]
    pairs = [(names[j], float(v * weights[j])) for j, v in zip(x.indices, x.data)]
    pushing_up = sorted((p for p in pairs if p[1] > 0), key=lambda p: -p[1])[:k]
    pushing_down = sorted((p for p in pairs if p[1] < 0), key=lambda p: p[1])[:k]
    return pushing_up, pushing_down


def _chips(pairs, colour: str) -> str:
    return " ".join(f'<span style="background:{colour};padding:0 4px;border-radius:3px;margin:1px">'
                    f'{html.escape(word)} {value:+.2f}</span>' for word, value in pairs) or "—"


def probability_table(probs: dict[str, np.ndarray], labels: tuple[str, ...] = ("negative", "positive"),
                      reasons: dict[str, str] | None = None) -> str:
    """HTML table: one row per model, its predicted label, a bar for the probability of the last label, a reason."""
    rows = []
    for name, p in probs.items():
        p = np.asarray(p, dtype=float)
        k = int(p.argmax())
        colour = "#1b7837" if k == len(labels) - 1 else "#b2182b"
        width = int(round(100 * p[-1]))
        bar = (f'<div style="width:160px;background:#eee;display:inline-block;vertical-align:middle">'
               f'<div style="width:{width}%;background:{colour};height:12px"></div></div>')
        why = (reasons or {}).get(name, "")
        rows.append(f"<tr><td style='text-align:left'>{html.escape(name)}</td>"
                    f"<td style='color:{colour};font-weight:600'>{html.escape(labels[k])}</td>"
                    f"<td>{bar} {p[-1]:.2f}</td><td style='text-align:left'>{why}</td></tr>")
    head = (f"<tr><th>model</th><th>prediction</th><th>P({html.escape(labels[-1])})</th>"
            f"<th>why (bag of words: the n-grams that weigh most)</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _reason(pipeline, text: str) -> str:
    up, down = bow_reasons(pipeline, text)
    return f"towards fresh: {_chips(up, '#d9f0d3')}<br>towards rotten: {_chips(down, '#f4cccc')}"


def _table_for(predictors, text, labels, bow_name, bow_pipeline) -> str:
    probs = {name: fn([text])[0] for name, fn in predictors.items()}
    reasons = {bow_name: _reason(bow_pipeline, text)} if bow_pipeline is not None else None
    return probability_table(probs, labels, reasons)


def sentiment_table(predictors: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str], *,
                    labels: tuple[str, ...] = ("negative", "positive"), bow_name: str | None = None,
                    bow_pipeline=None):
    """Static HTML (an IPython HTML object): for each text, every model's prediction, and the bag of words' reason."""
    from IPython.display import HTML

    parts = [f"<p><b>{html.escape(text)}</b></p>" + _table_for(predictors, text, labels, bow_name, bow_pipeline)
             for text in texts]
    return HTML("".join(parts))


def sentiment_box(predictors: dict[str, Callable[[list[str]], np.ndarray]], text: str = EXAMPLES[1],
                  labels: tuple[str, ...] = ("negative", "positive"), *, bow_name: str | None = None,
                  bow_pipeline=None):
    """A text box and example picker; each predictor maps a list of texts to class probabilities, shown per model,
    with the n-grams behind the bag of words' decision when `bow_pipeline` (its fitted pipeline) is given."""
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
        result.value = _table_for(predictors, typed, labels, bow_name, bow_pipeline)

    def pick(change):
        if change["new"]:
            box.value = change["new"]

    box.observe(show, names="value")
    examples.observe(pick, names="value")
    show()
    return w.VBox([examples, box, result])
