"""Lesson 08 widget: choose LoRA's rank and target layers (or how many top layers to unfreeze) and see what trains."""
from __future__ import annotations

import html

from torch import nn

TARGETS = ("query", "key", "value", "dense")


def lora_parameter_count(model: nn.Module, r: int, targets: tuple[str, ...] = ("query", "value"),
                         head: str = "classifier") -> int:
    """Trainable parameters after `compress.add_lora(model, r, targets=targets)`, counted without changing the model.

    Each targeted nn.Linear (in → out) gains A (r × in) and B (out × r): r·(in + out) values; the head stays trainable.
    """
    count = 0
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.Linear) and name in targets:
                count += r * (child.in_features + child.out_features)
    head_module = getattr(model, head, None)
    if head_module is not None:
        count += sum(p.numel() for p in head_module.parameters())
    return count


def top_layers_parameter_count(model: nn.Module, n_layers: int) -> int:
    """Trainable parameters after `compress.freeze_all_but_top(model, n_layers)` (a BERT classifier), without changing it."""
    layers = list(model.bert.encoder.layer)
    count = sum(p.numel() for layer in layers[len(layers) - n_layers:] if n_layers for p in layer.parameters())
    for part in (model.bert.pooler, model.classifier):
        if part is not None:
            count += sum(p.numel() for p in part.parameters())
    return count


def state_memory_mb(total: int, trainable: int, bytes_per_value: int = 4) -> float:
    """Memory (MB) that training with AdamW holds for the weights' sake: every weight, plus a gradient and AdamW's
    two moment estimates for each *trainable* weight — (total + 3 × trainable) × 4 bytes in float32.

    Arithmetic, not a measurement: activations (which grow with batch and length) come on top; the lesson
    measures a real training step with efficiency.training_memory_mb.
    """
    return (total + 3 * trainable) * bytes_per_value / 1e6


def budget_table(model: nn.Module, r: int, targets: tuple[str, ...], n_layers: int) -> str:
    """HTML: trainable parameters of full fine-tuning, top-k unfreezing and LoRA, their share of the model, and the
    memory weights + gradients + AdamW state take in training."""
    total = sum(p.numel() for p in model.parameters())
    lora = lora_parameter_count(model, r, targets)
    rows = [("full fine-tuning (every weight)", total, total),
            (f"top {n_layers} layer(s) + pooler + head", top_layers_parameter_count(model, n_layers), total),
            # LoRA adds its A and B matrices to the model's weights
            (f"LoRA r = {r} on {', '.join(targets) or '(no layer)'} + head", lora,
             total + lora - sum(p.numel() for p in getattr(model, "classifier", nn.Identity()).parameters()))]
    body = []
    for name, n, held in rows:
        share = n / total
        bar = (f'<div style="width:200px;background:#eee;display:inline-block;vertical-align:middle">'
               f'<div style="width:{max(1, round(200 * share ** 0.5))}px;background:#2166ac;height:12px"></div></div>')
        body.append(f"<tr><td style='text-align:left'>{html.escape(name)}</td><td>{n:,}</td>"
                    f"<td>{100 * share:.3f} %</td><td>{bar}</td><td>{state_memory_mb(held, n):,.0f}</td></tr>")
    head = ("<tr><th>method</th><th>trainable parameters</th><th>share of the model</th><th>(bar: √share)</th>"
            "<th>weights + gradients + AdamW state (MB)</th></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def lora_budget(model: nn.Module, r: int = 8, targets: tuple[str, ...] = ("query", "value"), n_layers: int = 2):
    """Sliders for LoRA's rank and top-k unfreezing, checkboxes for LoRA's target layers; a live table of trainable
    parameters (the model is only inspected, never changed)."""
    import ipywidgets as w

    n_total_layers = len(model.bert.encoder.layer)
    rank = w.IntSlider(value=r, min=1, max=64, description="LoRA rank r", continuous_update=True)
    boxes = [w.Checkbox(value=t in targets, description=t, indent=False, layout=w.Layout(width="90px"))
             for t in TARGETS]
    layers = w.IntSlider(value=n_layers, min=0, max=n_total_layers, description="top layers")
    result = w.HTML()

    def show(_=None):
        chosen = tuple(b.description for b in boxes if b.value)
        result.value = budget_table(model, rank.value, chosen, layers.value)

    for control in (rank, layers, *boxes):
        control.observe(show, names="value")
    show()
    return w.VBox([rank, w.HBox([w.Label("LoRA on:")] + boxes), layers, result])
