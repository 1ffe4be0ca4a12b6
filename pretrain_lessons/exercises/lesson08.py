"""Exercises of 08_efficiency_and_compression: FLOPs by hand, LoRA's parameter count, soft targets, freezing."""
from __future__ import annotations

import torch

from .core import Exercise, Incorrect, call


def _check_q1(answer):
    macs = 32 * 784 * 10
    if not isinstance(answer, (int, float)) or isinstance(answer, bool):
        raise Incorrect("give a number.")
    if answer == macs:
        raise Incorrect("that counts multiply-adds; torch.utils.flop_counter (and this lesson) counts each as 2 FLOPs.")
    if answer == 2 * 784 * 10:
        raise Incorrect("that is one image; the batch holds 32.")
    if answer == 2 * macs + 32 * 10:
        raise Incorrect("close, but the flop counter counts only the matrix product, not adding the bias (10 per image).")
    if answer != 2 * macs:
        raise Incorrect(f"{answer:,} is not it. The product (32 × 784) · (784 × 10) makes 32·784·10 multiply-adds.")


q1 = Exercise(
    name="q1",
    question=("Lesson 02's model is nn.Linear(784, 10). How many FLOPs does one forward pass on a batch of 32 images "
              "take, counting a multiply-add as 2 FLOPs (as torch.utils.flop_counter does) and ignoring the bias?"),
    checker=_check_q1,
    hint_text="The batch is a (32 × 784) matrix times a (784 × 10) matrix: each of the 32 × 10 outputs needs 784 multiply-adds.",
    solution_code="n_flops = 2 * 32 * 784 * 10",
    answer_name="n_flops",
    wrong_answers=["n_flops = 32 * 784 * 10", "n_flops = 2 * 784 * 10", "n_flops = 2 * 32 * 784 * 10 + 32 * 10",
                   "n_flops = 784 * 10 + 10"],
)


def _check_q2(fn):
    if not callable(fn):
        raise Incorrect("give a function lora_parameters(in_features, out_features, r).")
    for d_in, d_out, r in [(384, 384, 8), (384, 1536, 4), (10, 3, 1)]:
        got = call(fn, d_in, d_out, r)
        want = r * (d_in + d_out)
        if got == d_in * d_out:
            raise Incorrect("that is the frozen weight matrix W itself; LoRA trains only the two thin matrices A and B.")
        if got == r * d_in * d_out:
            raise Incorrect("A is r × in and B is out × r: add their sizes, do not multiply all three numbers.")
        if got == r * (d_in + d_out) + d_in * d_out:
            raise Incorrect("W stays frozen: count only A and B.")
        if got != want:
            raise Incorrect(f"for in = {d_in}, out = {d_out}, r = {r} the answer is not {got!r}. "
                            "Count the entries of A (r × in) and B (out × r).")


q2 = Exercise(
    name="q2",
    question=("LoRA replaces the update of a frozen weight W (out × in) by B·A with A (r × in) and B (out × r). Write "
              "lora_parameters(in_features, out_features, r): the number of trainable values it adds to one layer."),
    checker=_check_q2,
    hint_text="A has r·in entries and B has out·r entries; W is frozen and does not count.",
    solution_code="def lora_parameters(in_features, out_features, r):\n    return r * (in_features + out_features)",
    answer_name="lora_parameters",
    wrong_answers=[
        "def lora_parameters(in_features, out_features, r):\n    return in_features * out_features",
        "def lora_parameters(in_features, out_features, r):\n    return r * in_features * out_features",
        "def lora_parameters(in_features, out_features, r):\n    return r * (in_features + out_features) + in_features * out_features",
        "def lora_parameters(in_features, out_features, r):\n    return 2 * r * in_features",
    ],
)


def _check_q3(fn):
    if not callable(fn):
        raise Incorrect("give a function soft_targets(logits, temperature).")
    logits = torch.tensor([[4.0, 1.0, -2.0], [0.5, 0.0, 3.0]])
    for t in (1.0, 2.0, 5.0):
        got = call(fn, logits, t)
        want = torch.softmax(logits / t, dim=-1)
        if not isinstance(got, torch.Tensor):
            raise Incorrect(f"return a torch tensor; got {type(got).__name__}.")
        if got.shape != want.shape:
            raise Incorrect(f"keep one row per example: shape {tuple(want.shape)}, yours {tuple(got.shape)}.")
        if t != 1.0 and torch.allclose(got, torch.softmax(logits * t, dim=-1), atol=1e-5):
            raise Incorrect("multiplying by T sharpens the distribution; divide the logits by T to soften it.")
        if torch.allclose(got, torch.log_softmax(logits / t, dim=-1), atol=1e-5):
            raise Incorrect("those are log-probabilities; the soft targets are probabilities (softmax, not log_softmax).")
        if t != 1.0 and torch.allclose(got, torch.softmax(logits, dim=-1) / t, atol=1e-5):
            raise Incorrect("divide the logits by T *before* the softmax, so each row still sums to 1.")
        if not torch.allclose(got, want, atol=1e-5):
            raise Incorrect("each row should be softmax(logits / T) over the classes (the last axis).")


q3 = Exercise(
    name="q3",
    question=("Write soft_targets(logits, temperature): the teacher's softened class probabilities softmax(logits / T) "
              "used in knowledge distillation, one row per example."),
    checker=_check_q3,
    hint_text="`torch.softmax(logits / temperature, dim=-1)`; a larger T makes the rows flatter.",
    solution_code=("import torch\n\ndef soft_targets(logits, temperature):\n"
                   "    return torch.softmax(logits / temperature, dim=-1)"),
    answer_name="soft_targets",
    wrong_answers=[
        "import torch\ndef soft_targets(logits, temperature):\n    return torch.softmax(logits * temperature, dim=-1)",
        "import torch\ndef soft_targets(logits, temperature):\n    return torch.log_softmax(logits / temperature, dim=-1)",
        "import torch\ndef soft_targets(logits, temperature):\n    return torch.softmax(logits, dim=-1) / temperature",
        "import torch\ndef soft_targets(logits, temperature):\n    return torch.softmax(logits / temperature, dim=0)",
    ],
)


def _small_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3)
    return BertForSequenceClassification(config)


def _check_q4(fn):
    if not callable(fn):
        raise Incorrect("give a function head_only(model) that freezes every weight except the classification head.")
    model = _small_bert()
    returned = call(fn, model)
    if returned is not None and returned is not model:
        model = returned
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    head = {"classifier.weight", "classifier.bias"}
    if trainable == {n for n, _ in model.named_parameters()}:
        raise Incorrect("every parameter is still trainable: set requires_grad = False on the encoder's parameters.")
    if not trainable:
        raise Incorrect("now nothing trains at all: the classifier's weight and bias must keep requires_grad = True.")
    if trainable - head:
        extra = sorted(trainable - head)
        raise Incorrect(f"these should be frozen too: {', '.join(extra[:3])}{' …' if len(extra) > 3 else ''}.")
    if head - trainable:
        raise Incorrect(f"the head must stay trainable; frozen by mistake: {', '.join(sorted(head - trainable))}.")


q4 = Exercise(
    name="q4",
    question=("Change a training set-up: write head_only(model) that freezes a BertForSequenceClassification except its "
              "classification head (model.classifier), so an optimizer built afterwards trains only the head."),
    checker=_check_q4,
    hint_text=("Loop over `model.named_parameters()` and set `p.requires_grad = name.startswith('classifier')`. "
               "(`compress.freeze_all_but_top(model, 0)` also keeps the pooler trainable — not what is asked here.)"),
    solution_code=("def head_only(model):\n"
                   "    for name, p in model.named_parameters():\n"
                   "        p.requires_grad = name.startswith('classifier')\n"
                   "    return model"),
    answer_name="head_only",
    wrong_answers=[
        "def head_only(model):\n    return model",
        "def head_only(model):\n    for p in model.parameters():\n        p.requires_grad = False\n    return model",
        "def head_only(model):\n    for p in model.bert.encoder.parameters():\n        p.requires_grad = False\n    return model",
        "from pretrain_lessons.compress import freeze_all_but_top\ndef head_only(model):\n    return freeze_all_but_top(model, 0)",
    ],
)
