"""Quantization, distillation, freezing and LoRA behave as their definitions say."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from pretrain_lessons.compress import (Distiller, LoRALinear, add_lora, distillation_loss, freeze_all_but_top,
                                       quantize_int8)
from pretrain_lessons.efficiency import count_parameters, size_on_disk_mb


def tiny_bert(layers=3):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


def test_int8_quantization_shrinks_and_stays_close():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 4))
    q = quantize_int8(model)
    x = torch.randn(64, 256)
    assert size_on_disk_mb(q) < 0.4 * size_on_disk_mb(model)
    assert torch.allclose(q(x), model(x), atol=0.05)
    assert isinstance(model[0], nn.Linear)  # the original is untouched


def test_distillation_loss_limits():
    torch.manual_seed(0)
    s, t, y = torch.randn(8, 3), torch.randn(8, 3), torch.randint(0, 3, (8,))
    assert distillation_loss(s, t, y, alpha=0.0) == pytest.approx(F.cross_entropy(s, y).item())
    kl = F.kl_div(F.log_softmax(s, -1), F.softmax(t, -1), reduction="batchmean")
    assert distillation_loss(s, t, y, temperature=1.0, alpha=1.0) == pytest.approx(kl.item(), rel=1e-5)
    assert distillation_loss(t, t, y, temperature=3.0, alpha=1.0) == pytest.approx(0.0, abs=1e-6)


def test_distiller_gives_fit_a_loss_and_logits():
    model = Distiller(tiny_bert())
    ids = torch.randint(1, 100, (4, 10))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([0, 1, 0, 1]),
                teacher_logits=torch.randn(4, 2))
    assert out["logits"].shape == (4, 2) and out["loss"].ndim == 0


def test_freezing_keeps_only_the_top():
    model = freeze_all_but_top(tiny_bert(layers=3), n_layers=1)
    trainable = {n.split(".")[3] if n.startswith("bert.encoder") else n.split(".")[0] + "." + n.split(".")[1]
                 for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"2", "bert.pooler", "classifier.weight", "classifier.bias"}


def test_lora_starts_as_the_base_model_and_trains_few_parameters():
    model = tiny_bert()
    ids = torch.randint(1, 100, (2, 7))
    before = model(input_ids=ids).logits
    add_lora(model, r=4, alpha=8)
    assert torch.allclose(model(input_ids=ids).logits, before, atol=1e-6)
    _, trainable = count_parameters(model)
    # 3 layers × (query + value) × r·(in + out) + the 2-class head
    assert trainable == 3 * 2 * 4 * (32 + 32) + (32 * 2 + 2)
    layer = LoRALinear(nn.Linear(5, 3), r=2)
    layer.B.data.normal_()
    x = torch.randn(4, 5)
    assert torch.allclose(layer(x), layer.base(x) + layer.scale * x @ (layer.B @ layer.A).T, atol=1e-6)


def test_int8_embeddings_shrink_a_bert_further():
    model = tiny_bert()
    ids = torch.randint(1, 100, (3, 9))
    linear_only, everything = quantize_int8(model), quantize_int8(model, embeddings=True)
    assert size_on_disk_mb(everything) < size_on_disk_mb(linear_only) < size_on_disk_mb(model)
    assert isinstance(model.bert.embeddings.word_embeddings, nn.Embedding)  # the original is untouched
    with torch.no_grad():
        # a column slice, as dynamic padding makes: non-contiguous indices
        assert torch.allclose(everything(input_ids=ids[:, :6]).logits, model(input_ids=ids[:, :6]).logits, atol=0.1)
