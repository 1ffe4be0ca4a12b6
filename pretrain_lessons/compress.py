"""Making models cheaper: int8 dynamic quantization, knowledge distillation, freezing, and LoRA."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def quantize_int8(model: nn.Module, embeddings: bool = False, per_channel: bool = False) -> nn.Module:
    """A copy of the model whose nn.Linear layers hold int8 weights (activations quantized on the fly).

    What PyTorch does (torch.ao.quantization.quantize_dynamic):
    - weights, by default (`default_dynamic_qconfig`): **per-tensor symmetric** — one float scale s per weight
      matrix, s = max|W| / 127.5, zero point 0, q = round(W / s) clamped to [-128, 127];
      with `per_channel=True` (`per_channel_dynamic_qconfig`): one scale per output row, zero points still 0;
    - activations: at every call, each layer's input is quantized to uint8 with a scale and zero point taken
      from that batch's own min and max (that is what "dynamic" means), multiplied in integers, and the result
      turned back into float32.
    With `embeddings=True` the nn.Embedding tables are stored in 8 bits as well (weight-only, one float scale and
    one float zero point per row, `float_qparams_weight_only_qconfig`) — in a small BERT they are a large share
    of the weights.
    """
    from torch.ao.quantization import (default_dynamic_qconfig, float_qparams_weight_only_qconfig,
                                       per_channel_dynamic_qconfig)

    spec = {nn.Linear: per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig}
    if embeddings:
        spec[nn.Embedding] = float_qparams_weight_only_qconfig
    with warnings.catch_warnings():
        # torch.ao.quantization still works in torch 2.x but is being moved to the torchao package.
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), spec, dtype=torch.qint8)
    if embeddings:
        for module in list(quantized.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, torch.ao.nn.quantized.Embedding):
                    setattr(module, name, _ContiguousIndices(child))
    return quantized


def weight_error(float_linear: nn.Linear, quantized_linear: nn.Module) -> float:
    """Relative error ‖W − dequantize(q(W))‖ / ‖W‖ of one quantized linear layer's weight."""
    w = float_linear.weight.detach()
    return float((w - quantized_linear.weight().dequantize()).norm() / w.norm())


def quantized_linears(original: nn.Module, quantized: nn.Module) -> list[tuple[str, nn.Linear, nn.Module]]:
    """(name, float layer, its int8 version) for every nn.Linear that quantize_int8 replaced."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    replaced = dict(quantized.named_modules())
    return [(name, module, replaced[name]) for name, module in original.named_modules()
            if isinstance(module, nn.Linear) and isinstance(replaced.get(name), DynamicLinear)]


@torch.inference_mode()
def classifier_logits(model: nn.Module, tokenizer, texts: list[str], *, max_length: int = 64, batch_size: int = 128,
                      bf16: bool = False) -> torch.Tensor:
    """A text classifier's logits (float32, in the order of `texts`), computed on the CPU.

    The texts are scored in order of length, so each batch is cut to the length of its longest text and little
    time goes into padding. (An int8 model's activation ranges are taken per batch: its logits depend slightly on
    which texts share a batch, so keep this order fixed when comparing models.)
    """
    model.eval()
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer([texts[i] for i in order[start:start + batch_size]], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            parts.append(model(**batch).logits.float())
    logits = torch.cat(parts)
    out = torch.empty_like(logits)
    out[torch.from_numpy(order)] = logits     # back to the order of `texts`
    return out


class _ContiguousIndices(nn.Module):
    """The quantized embedding kernel needs contiguous indices; BERT's token-type ids and sliced batches are not."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        self.embedding = embedding

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.embedding(indices.contiguous())


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """α·T²·KL(teacher_T ‖ student_T) + (1−α)·CE(student, labels) — Hinton et al. (2015).

    Dividing logits by T > 1 softens both distributions so that the teacher's "dark knowledge" (how wrong
    answers rank) reaches the student; T² keeps the gradient scale independent of T.
    """
    soft_teacher = F.log_softmax(teacher_logits / temperature, dim=-1)
    soft_student = F.log_softmax(student_logits / temperature, dim=-1)
    kl = F.kl_div(soft_student, soft_teacher, reduction="batchmean", log_target=True)
    return alpha * temperature**2 * kl + (1 - alpha) * F.cross_entropy(student_logits, labels)


class Distiller(nn.Module):
    """Wraps a student classifier so fit() can train it on batches that also carry the teacher's logits."""

    def __init__(self, student: nn.Module, temperature: float = 2.0, alpha: float = 0.5):
        super().__init__()
        self.student, self.temperature, self.alpha = student, temperature, alpha

    def forward(self, teacher_logits: torch.Tensor | None = None, labels: torch.Tensor | None = None, **inputs):
        logits = self.student(**inputs).logits
        if labels is None:
            loss = None
        elif teacher_logits is None:
            loss = F.cross_entropy(logits, labels)
        else:
            loss = distillation_loss(logits, teacher_logits, labels, self.temperature, self.alpha)
        return {"loss": loss, "logits": logits}


def freeze_all_but_top(model: nn.Module, n_layers: int) -> nn.Module:
    """Freeze a BERT classifier except its top `n_layers` encoder layers, pooler and classification head."""
    for p in model.parameters():
        p.requires_grad = False
    layers = model.bert.encoder.layer
    for layer in list(layers)[len(layers) - n_layers:] if n_layers else []:
        for p in layer.parameters():
            p.requires_grad = True
    for part in (model.bert.pooler, model.classifier):
        if part is not None:
            for p in part.parameters():
                p.requires_grad = True
    return model


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update: y = W x + (α/r)·B A x (Hu et al., 2021).

    B starts at zero, so at first the layer computes exactly what the pretrained one did.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0):
        super().__init__()
        self.base = base
        for p in self.base.parameters():
            p.requires_grad = False
        self.A = nn.Parameter(torch.empty(r, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scale = alpha / r

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale


def add_lora(model: nn.Module, r: int = 8, alpha: float = 16.0, targets: tuple[str, ...] = ("query", "value")) -> nn.Module:
    """Freeze the model and put LoRALinear on every nn.Linear whose name ends with one of `targets`; the
    classification head stays trainable. Returns the same model, changed in place."""
    for p in model.parameters():
        p.requires_grad = False
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and child_name in targets:
                setattr(module, child_name, LoRALinear(child, r, alpha))
    head = getattr(model, "classifier", None)
    if head is not None:
        for p in head.parameters():
            p.requires_grad = True
    return model
