"""Lesson 08's helpers: the parameter-budget widget counts what add_lora / freeze_all_but_top actually train."""
import copy

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from pretrain_lessons.compress import add_lora, freeze_all_but_top
from pretrain_lessons.efficiency import count_parameters
from pretrain_lessons.widgets.lesson08 import budget_table, lora_budget, lora_parameter_count, top_layers_parameter_count


def tiny_bert(layers=3):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2)
    return BertForSequenceClassification(config).eval()


@pytest.mark.parametrize("r,targets", [(1, ("query",)), (4, ("query", "value")), (8, ("query", "key", "value", "dense"))])
def test_lora_count_matches_add_lora(r, targets):
    model = tiny_bert()
    predicted = lora_parameter_count(model, r, targets)
    assert count_parameters(model)[1] == count_parameters(model)[0]      # counting changed nothing
    assert count_parameters(add_lora(copy.deepcopy(model), r=r, targets=targets))[1] == predicted


@pytest.mark.parametrize("n", [0, 1, 3])
def test_top_layer_count_matches_freezing(n):
    model = tiny_bert()
    assert count_parameters(freeze_all_but_top(copy.deepcopy(model), n))[1] == top_layers_parameter_count(model, n)


def test_widget_builds_and_updates():
    model = tiny_bert()
    box = lora_budget(model, r=4)
    html_before = box.children[-1].value
    box.children[0].value = 16
    assert box.children[-1].value != html_before and "16" in box.children[-1].value
    assert "full fine-tuning" in budget_table(model, 2, ("query",), 1)
