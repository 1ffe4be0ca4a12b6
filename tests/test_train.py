"""The training loop on real MNIST: accuracy, resume, NaN guard, input checks, accumulation, HF models."""
import os
import signal

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from pretrain_lessons.data.loaders import TensorLoader, mnist_tensors
from pretrain_lessons.device import seed_everything
from pretrain_lessons.train import CheckpointMismatchError, NonFiniteLossError, evaluate, fit


@pytest.fixture(scope="module")
def mnist():
    d = mnist_tensors()
    norm = lambda t: ((t.float() / 255 - 0.1307) / 0.3081).view(len(t), -1)  # noqa: E731
    return norm(d["train_images"]), d["train_labels"], norm(d["test_images"]), d["test_labels"]


def test_linear_model_reaches_known_accuracy_on_real_mnist(mnist):
    x, y, xt, yt = mnist
    seed_everything(0)
    model = nn.Linear(784, 10)
    history = fit(model, TensorLoader(x, y, batch_size=128, shuffle=True), epochs=2,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    result = evaluate(model, TensorLoader(xt, yt, batch_size=2000), num_classes=10, progress=False)
    # Softmax regression reaches about 92 % after two epochs; 90 % would mean the loop is broken.
    assert result["accuracy"] >= 0.90, result["accuracy"]
    assert result["loss"] < 0.35
    assert len(history.steps) == 2 * 469
    assert history.steps[-1]["loss"] < history.steps[0]["loss"]


def _small_run(x, y, checkpoint, interrupt_at=None, epochs=3):
    seed_everything(1)
    model = nn.Sequential(nn.Linear(784, 32), nn.Dropout(0.2), nn.ReLU(), nn.Linear(32, 10))
    callbacks = ()
    if interrupt_at is not None:
        def stop(state):
            if state["step"] == interrupt_at:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C or Jupyter's interrupt button does
        callbacks = (stop,)
    loader = TensorLoader(x, y, batch_size=100, shuffle=True)
    fit(model, loader, epochs=epochs, lr=1e-3, checkpoint=checkpoint, checkpoint_every=7, callbacks=callbacks,
        progress=False, scheduler="linear", warmup_steps=5)
    return model


def test_interrupted_then_resumed_run_matches_uninterrupted(mnist, tmp_path):
    x, y = mnist[0][:2000], mnist[1][:2000]
    reference = _small_run(x, y, tmp_path / "a.pt")
    ckpt = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt, match="resume"):
        _small_run(x, y, ckpt, interrupt_at=31)  # mid-epoch 2, between periodic checkpoints
    assert ckpt.exists()
    state = torch.load(ckpt, weights_only=True)   # tensors and plain values only: nothing in it can run code
    assert state["position"]["step"] == 31
    resumed = _small_run(x, y, ckpt)
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_finished_checkpoint_returns_without_training(mnist, tmp_path):
    x, y = mnist[0][:500], mnist[1][:500]
    ckpt = tmp_path / "done.pt"
    _small_run(x, y, ckpt, epochs=1)
    model = nn.Sequential(nn.Linear(784, 32), nn.Dropout(0.2), nn.ReLU(), nn.Linear(32, 10))
    history = fit(model, TensorLoader(x, y, batch_size=100, shuffle=True), epochs=1, checkpoint=ckpt,
                  scheduler="linear", warmup_steps=5, progress=False)
    assert len(history.steps) == 5  # the saved history, not a new run
    with pytest.raises(CheckpointMismatchError, match="different run"):
        fit(nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)), TensorLoader(x, y, batch_size=100),
            epochs=1, checkpoint=ckpt, progress=False)


def test_nan_guard_fires_on_diverging_learning_rate(mnist):
    x, y = mnist[0][:2000], mnist[1][:2000]
    seed_everything(0)
    model = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    with pytest.raises(NonFiniteLossError, match="learning rate") as info:
        fit(model, TensorLoader(x, y, batch_size=50, shuffle=True), epochs=5,
            optimizer=torch.optim.SGD(model.parameters(), lr=1e4), progress=False)
    assert "max_grad_norm" in str(info.value)


def test_nan_in_inputs_is_named_as_the_cause():
    x = torch.randn(64, 4)
    x[3, 1] = float("nan")
    with pytest.raises(NonFiniteLossError, match="inputs of this batch contain NaN"):
        fit(nn.Linear(4, 2), TensorLoader(x, torch.zeros(64, dtype=torch.long), batch_size=64), progress=False)


def test_labels_outside_the_models_classes_are_refused_before_training():
    x, y = torch.randn(300, 8), torch.randint(0, 3, (300,))
    y[250] = 7  # not in the first batch: the check looks at every label
    model = nn.Linear(8, 3)
    before = model.weight.clone()
    with pytest.raises(ValueError, match=r"labels \[7\] outside the model's 3 classes"):
        fit(model, TensorLoader(x, y, batch_size=32, shuffle=True), progress=False)
    assert torch.equal(before, model.weight)  # no step was taken


def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match="cannot run on the first batch"):
        fit(nn.Linear(784, 10), TensorLoader(torch.randn(10, 28, 28), torch.zeros(10, dtype=torch.long)), progress=False)
    with pytest.raises(ValueError, match="do not match model outputs"):
        fit(nn.Linear(4, 3), DataLoader(TensorDataset(torch.randn(10, 4), torch.zeros(10, 1, dtype=torch.long)),
                                       batch_size=5), loss_fn=lambda out, y: out.sum(), progress=False)


def test_empty_loader_is_refused():
    empty = DataLoader(TensorDataset(torch.randn(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)
    with pytest.raises(ValueError, match="no batches"):
        fit(nn.Linear(4, 2), empty, progress=False)


def test_gradient_accumulation_equals_a_larger_batch():
    seed_everything(0)
    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    fit(a, TensorLoader(x, y, batch_size=64), optimizer=torch.optim.SGD(a.parameters(), lr=0.5), progress=False)
    fit(b, TensorLoader(x, y, batch_size=16), optimizer=torch.optim.SGD(b.parameters(), lr=0.5), grad_accum_steps=4,
        progress=False)
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


def test_clipping_and_bf16_autocast_run_on_cpu():
    seed_everything(0)
    x, y = torch.randn(128, 6), torch.randint(0, 2, (128,))
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    history = fit(model, TensorLoader(x, y, batch_size=32), val_loader=TensorLoader(x, y, batch_size=64), epochs=2,
                  precision="bf16", max_grad_norm=0.5, scheduler="cosine", eval_every=3, progress=False)
    assert len(history.evals) >= 3
    assert 0 <= history.last("val_accuracy") <= 1


def test_hugging_face_model_with_dict_batches():
    from transformers import BertConfig, BertForSequenceClassification

    seed_everything(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(config)
    ids = torch.randint(5, 50, (40, 8))
    labels = (ids[:, 0] > 27).long()  # learnable from the first token
    loader = TensorLoader(ids, torch.ones_like(ids), labels, keys=("input_ids", "attention_mask", "labels"),
                          batch_size=8, shuffle=True)
    history = fit(model, loader, val_loader=loader, epochs=15, lr=3e-3, num_classes=2, progress=False)
    assert history.last("val_accuracy") >= 0.9
    bad = TensorLoader(ids, labels + 2, keys=("input_ids", "labels"), batch_size=8)
    with pytest.raises(ValueError, match="outside the model's 2 classes"):
        fit(model, bad, progress=False)


# ---------------------------------------------------------------- the loop, correct (review of lessons 00-02, §7)


def _sgd_reference(model, parts, lr):
    """Plain SGD steps, one per group of (x, y) parts: the mean loss over every example of the group."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for group in parts:
        x = torch.cat([p[0] for p in group])
        y = torch.cat([p[1] for p in group])
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def test_short_last_accumulation_group_is_averaged_over_its_own_size():
    seed_everything(0)
    x, y = torch.randn(80, 5), torch.randint(0, 3, (80,))
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    # 5 micro-batches of 16, groups of 4: one step on 4 batches, then one on the single batch left over.
    history = fit(a, TensorLoader(x, y, batch_size=16), optimizer=torch.optim.SGD(a.parameters(), lr=0.5),
                  grad_accum_steps=4, progress=False)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 80, 16)]
    _sgd_reference(b, [batches[:4], batches[4:]], lr=0.5)
    assert len(history.steps) == 2
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


def test_uneven_micro_batches_are_weighted_by_their_examples():
    seed_everything(0)
    x, y = torch.randn(40, 5), torch.randint(0, 3, (40,))
    a, b = nn.Linear(5, 3), nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    # Batches of 16, 16 and 8 in one group of 3: the step is the mean over all 40 examples.
    fit(a, TensorLoader(x, y, batch_size=16), optimizer=torch.optim.SGD(a.parameters(), lr=0.5), grad_accum_steps=3,
        progress=False)
    _sgd_reference(b, [[(x, y)]], lr=0.5)
    assert torch.allclose(a.weight, b.weight, atol=1e-6)


class TokenModel(nn.Module):
    """A Hugging Face-style token model: returns .loss, the mean over the tokens whose label is not -100."""

    def __init__(self, vocab: int = 20, width: int = 8):
        super().__init__()
        self.embed, self.head = nn.Embedding(vocab, width), nn.Linear(width, vocab)

    def forward(self, input_ids, labels=None):
        logits = self.head(self.embed(input_ids))
        loss = None if labels is None else nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return {"loss": loss, "logits": logits}


def test_token_losses_are_averaged_over_every_token_of_an_accumulated_group():
    seed_everything(0)
    ids = torch.randint(0, 20, (8, 6))
    labels = torch.full_like(ids, -100)
    labels[:4] = ids[:4]             # the first micro-batch: 24 labelled tokens
    labels[4, 0] = ids[4, 0]         # the second: 1 labelled token
    a, b = TokenModel(), TokenModel()
    b.load_state_dict(a.state_dict())
    loader = lambda n: TensorLoader(ids, labels, keys=("input_ids", "labels"), batch_size=n)  # noqa: E731
    small = fit(a, loader(4), optimizer=torch.optim.SGD(a.parameters(), lr=1.0), grad_accum_steps=2, progress=False)
    whole = fit(b, loader(8), optimizer=torch.optim.SGD(b.parameters(), lr=1.0), progress=False)
    # One batch of 8 rows: the mean over its 25 tokens. Accumulating two rows of 4 must give the same step.
    assert small.steps[0]["loss"] == pytest.approx(whole.steps[0]["loss"], rel=1e-5)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_each_evaluation_happens_once_and_epochs_count_from_one_everywhere():
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    seen = []
    history = fit(nn.Linear(4, 2), TensorLoader(x, y, batch_size=16), val_loader=TensorLoader(x, y, batch_size=64),
                  epochs=2, eval_every=2, callbacks=(lambda s: seen.append(s["epoch"]),), progress=False)
    assert [(r["step"], r["epoch"]) for r in history.evals] == [(2, 1), (4, 1), (6, 2), (8, 2)]
    assert [r["epoch"] for r in history.steps] == [1, 1, 1, 1, 2, 2, 2, 2] == seen


def test_seed_seeds_the_run():
    x, y = torch.randn(200, 6), torch.randint(0, 2, (200,))

    def run(seed, noise):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.5), nn.ReLU(), nn.Linear(16, 2))
        torch.manual_seed(noise)            # whatever the random state was before the call
        fit(model, TensorLoader(x, y, batch_size=20, shuffle=True), epochs=2, seed=seed, progress=False)
        return model[0].weight.detach().clone()

    assert torch.equal(run(seed=7, noise=1), run(seed=7, noise=2))       # seed= alone decides the run
    assert not torch.equal(run(seed=7, noise=1), run(seed=8, noise=1))
    assert not torch.equal(run(seed=None, noise=1), run(seed=None, noise=2))  # None: the caller's random state


def test_non_finite_gradients_are_caught_before_the_step():
    seed_everything(0)
    x, y = torch.rand(32, 4) + 0.1, torch.randint(0, 2, (32,))
    model = nn.Linear(4, 2)
    before = model.weight.detach().clone()

    def loss_fn(out, target):
        # Finite value, infinite slope: d sqrt(u)/du at u = 0 is inf, and inf * 0 = nan in the chain rule.
        return nn.functional.cross_entropy(out, target) + torch.sqrt(out * 0).sum()

    with pytest.raises(NonFiniteLossError, match="gradient") as info:
        fit(model, TensorLoader(x, y, batch_size=32), loss_fn=loss_fn, progress=False)
    assert "max_grad_norm" in str(info.value)
    assert torch.equal(before, model.weight)  # the step that would have put NaN into the weights was not taken


def test_default_optimizer_is_fused_adamw_without_decay_on_biases_and_norms():
    from transformers import BertConfig, BertForSequenceClassification, Trainer

    from pretrain_lessons.train import adamw

    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=2)
    model = BertForSequenceClassification(config)
    optimizer = adamw(model, lr=1e-3, weight_decay=0.01)
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in optimizer.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == set(Trainer.get_decay_parameter_names(None, model))     # the same split as Trainer's
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(names)
    assert optimizer.defaults["fused"] or optimizer.defaults["foreach"]
    assert optimizer.defaults["fused"] is True          # torch's CPU kernel exists since 2.4
    used = []
    fit(nn.Linear(4, 2), TensorLoader(torch.randn(8, 4), torch.zeros(8, dtype=torch.long), batch_size=8),
        callbacks=(lambda s: used.append(s["optimizer"]),), progress=False)
    assert isinstance(used[0], torch.optim.AdamW) and used[0].defaults["fused"] is True
