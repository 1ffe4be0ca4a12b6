"""Quantization, distillation, freezing and LoRA behave as their definitions say."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from pretrain_lessons.compress import (Distiller, LoRALinear, add_lora, classifier_logits, distillation_loss,
                                       freeze_all_but_top, quantize_int8, quantized_linears, weight_error)
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


def test_default_int8_is_one_symmetric_scale_per_matrix_and_per_channel_one_per_row():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 8))
    model[0].weight.data[3] *= 10                    # one row with a much larger range
    w = model[0].weight.detach()
    per_tensor = quantize_int8(model)[0].weight()
    assert per_tensor.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric)
    assert per_tensor.q_zero_point() == 0
    assert per_tensor.q_scale() == pytest.approx(w.abs().max().item() / 127.5, rel=1e-5)
    per_row = quantize_int8(model, per_channel=True)[0].weight()
    assert per_row.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
    assert torch.equal(per_row.q_per_channel_zero_points(), torch.zeros(8, dtype=torch.long))
    assert torch.allclose(per_row.q_per_channel_scales().float(), w.abs().amax(1) / 127.5, rtol=1e-5)
    # One wide row forces a coarse scale on every row with one scale per matrix; per-row scales avoid that.
    (name, layer, q_tensor), = quantized_linears(model, quantize_int8(model))
    (_, _, q_rows), = quantized_linears(model, quantize_int8(model, per_channel=True))
    assert name == "0" and weight_error(layer, q_rows) < weight_error(layer, q_tensor)


def test_classifier_logits_keep_the_order_of_the_texts():
    class Tok:
        """A stand-in tokenizer: one token per character."""

        def __call__(self, texts, padding=False, truncation=True, max_length=64, return_tensors=None):
            ids = [[1 + (ord(c) % 90) for c in t][:max_length] for t in texts]
            if not padding:
                return {"input_ids": ids}
            width = max(len(i) for i in ids)
            mask = [[1] * len(i) + [0] * (width - len(i)) for i in ids]
            ids = [i + [0] * (width - len(i)) for i in ids]
            return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}

    model = tiny_bert()
    texts = ["a much longer text than the others", "hi", "medium text", "x", "another fairly long one"]
    got = classifier_logits(model, Tok(), texts, batch_size=2, max_length=30)
    one_by_one = torch.cat([model(**Tok()([t], padding=True, max_length=30)).logits for t in texts])
    assert torch.allclose(got, one_by_one, atol=1e-5)
