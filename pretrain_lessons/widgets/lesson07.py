"""Lesson 07 widget: type a sentence, pick a model, a layer and a head, and see that head's attention map."""
from __future__ import annotations

import ipywidgets as widgets

from ..attention import bert_attention, head_profile
from ..plots import attention_heatmap
from . import figure_output


def head_figure(model, tokenizer, sentence: str, layer: int, head: int, name: str = "model"):
    """The attention map of one head for one sentence, titled with what the head does most on it."""
    result = bert_attention(model, tokenizer, sentence)
    profile = head_profile(result)
    top = max(profile, key=lambda k: float(profile[k][layer, head]))
    fig = attention_heatmap(result.attentions[layer, head], result.tokens,
                            title=f"{name} · layer {layer} · head {head}\n"
                                  f"(on this sentence: {100 * float(profile[top][layer, head]):.0f} % to {top})")
    fig.tight_layout()
    return fig


def attention_explorer(models: dict, sentence: str = "The movie was not good, but the actors were wonderful.",
                       layer: int = 0, head: int = 0) -> widgets.VBox:
    """Dropdown of models (name → (model, tokenizer), each loaded with attn_implementation='eager'), a sentence box,
    and layer/head sliders; below them, the chosen head's attention map."""
    names = list(models)
    choose = widgets.Dropdown(options=names, value=names[0], description="Model:")
    box = widgets.Text(value=sentence, description="Sentence:", continuous_update=False,
                       layout=widgets.Layout(width="95%"))
    layer_slider = widgets.IntSlider(value=layer, min=0, description="Layer:", continuous_update=False)
    head_slider = widgets.IntSlider(value=head, min=0, description="Head:", continuous_update=False)
    out = widgets.Output()

    def limits() -> None:
        config = models[choose.value][0].config
        layer_slider.max = config.num_hidden_layers - 1
        head_slider.max = config.num_attention_heads - 1

    def redraw(change=None) -> None:
        limits()
        model, tokenizer = models[choose.value]
        out.clear_output(wait=True)
        with out:
            if not box.value.strip():
                print("Type a sentence.")
                return
            figure_output(head_figure(model, tokenizer, box.value, layer_slider.value, head_slider.value, choose.value))

    for control in (choose, box, layer_slider, head_slider):
        control.observe(redraw, names="value")
    limits()
    redraw()
    help_text = widgets.HTML("Each row is a token <i>looking</i> (query); each column a token <i>looked at</i> (key). "
                             "Rows sum to 1. Change the model, layer, head or sentence to redraw.")
    ui = widgets.VBox([help_text, choose, box, widgets.HBox([layer_slider, head_slider]), out])
    ui.controls = dict(model=choose, sentence=box, layer=layer_slider, head=head_slider)
    ui.out = out
    return ui

