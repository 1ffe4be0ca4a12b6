"""Lesson 03 widget: type a sentence, see NLTK tokens, seed 001's preprocessed tokens and WordPiece tokens with ids."""
from __future__ import annotations

import html

import ipywidgets as widgets

from ..text import preprocess


def tokenizations(sentence: str, tokenizer) -> dict[str, list]:
    """The sentence as NLTK word tokens, seed 001's preprocessed tokens, WordPiece tokens and their ids."""
    import nltk

    ids = tokenizer(sentence)["input_ids"]
    return {"nltk": nltk.word_tokenize(sentence), "preprocessed": preprocess(sentence),
            "wordpiece": tokenizer.convert_ids_to_tokens(ids), "ids": ids}


def _chips(tokens, colour: str) -> str:
    style = f"display:inline-block;margin:2px;padding:1px 5px;border-radius:4px;background:{colour};font-family:monospace"
    return "".join(f'<span style="{style}">{html.escape(str(t))}</span>' for t in tokens) or "<i>(nothing left)</i>"


def comparison_html(sentence: str, tokenizer) -> str:
    """An HTML table comparing the tokenizations of one sentence."""
    t = tokenizations(sentence, tokenizer)
    pieces = "".join(
        f'<span style="display:inline-block;margin:2px;text-align:center;font-family:monospace">'
        f'<span style="padding:1px 5px;border-radius:4px;background:#fde0c5">{html.escape(tok)}</span><br>'
        f'<small>{i}</small></span>' for tok, i in zip(t["wordpiece"], t["ids"]))
    rows = [("NLTK word_tokenize", f"{len(t['nltk'])} tokens", _chips(t["nltk"], "#deebf7")),
            ("seed 001 preprocess", f"{len(t['preprocessed'])} tokens", _chips(t["preprocessed"], "#e5f5e0")),
            ("WordPiece (bert-base-uncased) + ids", f"{len(t['ids'])} tokens", pieces)]
    body = "".join(f"<tr><td style='text-align:left;vertical-align:top'><b>{name}</b><br><small>{n}</small></td>"
                   f"<td style='text-align:left'>{cells}</td></tr>" for name, n, cells in rows)
    return f"<table>{body}</table>"


def tokenizer_explorer(tokenizer, sentence: str = "I didn't love it: 2 hours of un-funny, overlong nonsense!"):
    """A text box; below it, the sentence tokenized three ways (NLTK, seed 001's pipeline, WordPiece with ids)."""
    box = widgets.Text(value=sentence, description="Sentence:", continuous_update=False,
                       layout=widgets.Layout(width="95%"))
    view = widgets.HTML(comparison_html(sentence, tokenizer))

    def redraw(change=None) -> None:
        view.value = comparison_html(box.value, tokenizer)

    box.observe(redraw, names="value")
    return widgets.VBox([box, view])
