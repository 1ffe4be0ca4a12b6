"""Exercises of 04_bert_mlm_pretraining: MLM labels, how many tokens are masked, what a perplexity ratio means,
judging a difference, scoring at [MASK] only, and changing the 80/10/10 mix."""
from __future__ import annotations

import math

import torch

from .core import Exercise, Incorrect, call, number

# ---------------------------------------------------------------- q1: labels for the masked language model


def _check_q1(fn):
    if not callable(fn):
        raise Incorrect("give a function mlm_labels(input_ids, chosen).")
    ids = torch.tensor([[2, 17, 23, 41, 3], [2, 99, 5, 8, 3]])
    chosen = torch.tensor([[False, True, False, False, False], [False, False, True, True, False]])
    got = call(fn, ids.clone(), chosen.clone())
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"return a tensor; you returned {type(got).__name__}.")
    expected = torch.tensor([[-100, 17, -100, -100, -100], [-100, -100, 5, 8, -100]])
    if got.shape != expected.shape:
        raise Incorrect(f"labels must have the shape of input_ids {tuple(ids.shape)}; yours have {tuple(got.shape)}.")
    if torch.equal(got, ids):
        raise Incorrect("these labels are the input itself — seed 001's bug: every position is a target, so the model "
                        "learns to copy. Only chosen positions get a label; the rest get −100.")
    if torch.equal(got, torch.where(chosen, torch.zeros_like(ids), ids)) or (got[~chosen] != -100).any():
        raise Incorrect("positions that were not chosen must be −100, the index cross_entropy ignores (0 would be "
                        "a real token: [PAD]).")
    if not torch.equal(got, expected):
        raise Incorrect("at the chosen positions the label is the original token id from input_ids.")


q1 = Exercise(
    name="q1",
    question=("Write `mlm_labels(input_ids, chosen)`: the labels of masked language modelling, given the original "
              "token ids and a boolean tensor `chosen` of the same shape (the 15 % of positions picked for prediction)."),
    checker=_check_q1,
    hint_text="torch.where(condition, a, b) picks from a where the condition holds and from b elsewhere; b can be "
              "torch.full_like(input_ids, -100).",
    solution_code=("import torch\n\ndef mlm_labels(input_ids, chosen):\n"
                   "    return torch.where(chosen, input_ids, torch.full_like(input_ids, -100))"),
    answer_name="mlm_labels",
    setup="import torch",
    wrong_answers=["def mlm_labels(input_ids, chosen):\n    return input_ids.clone()",
                   "import torch\ndef mlm_labels(input_ids, chosen):\n    return torch.where(chosen, input_ids, torch.zeros_like(input_ids))",
                   "import torch\ndef mlm_labels(input_ids, chosen):\n    return torch.where(chosen, torch.full_like(input_ids, -100), input_ids)"],
)

# ---------------------------------------------------------------- q2: how many [MASK] tokens per batch

Q2 = {"batch": 32, "block": 128, "specials": 2}


def q2_expected() -> float:
    return Q2["batch"] * (Q2["block"] - Q2["specials"]) * 0.15 * 0.8


def _check_q2(answer):
    value = number(answer, "give a number.")
    expected = q2_expected()
    if abs(value - expected) < 0.01:
        return None
    if abs(value - 32 * 128 * 0.15 * 0.8) < 0.01:
        raise Incorrect("[CLS] and [SEP] are never chosen: each block has 126 ordinary tokens, not 128.")
    if abs(value - 32 * 126 * 0.15) < 0.01 or abs(value - 32 * 128 * 0.15) < 0.01:
        raise Incorrect("that is the number of chosen tokens (those with a label); only 80 % of them become [MASK].")
    raise Incorrect(f"{value:g} is not it: blocks × ordinary tokens per block × 15 % × 80 %.")


q2 = Exercise(
    name="q2",
    question=("A batch holds 32 blocks of 128 tokens, each block starting with [CLS] and ending with [SEP]. On average, "
              "how many tokens of the batch are replaced by [MASK]?"),
    checker=_check_q2,
    hint_text="Special tokens are never chosen. 15 % of the ordinary tokens are chosen; of those, 80 % become [MASK].",
    solution_code="n_mask = 32 * (128 - 2) * 0.15 * 0.8",
    answer_name="n_mask",
    wrong_answers=["n_mask = 32 * 128 * 0.15 * 0.8", "n_mask = 32 * 126 * 0.15", "n_mask = 0.15 * 0.8", "n_mask = 'many'"],
)

# ---------------------------------------------------------------- q3: a perplexity ratio from two losses

Q3 = {"untrained": 9.2, "trained": 5.1}


def _check_q3(answer):
    value = number(answer, "give a number.")
    expected = math.exp(Q3["untrained"] - Q3["trained"])
    if abs(value - expected) <= 1e-3 * expected:
        return None
    if abs(value - Q3["untrained"] / Q3["trained"]) < 1e-3:
        raise Incorrect("that is the ratio of the losses; perplexity is exp(loss), so compare exp(9.2) with exp(5.1).")
    if abs(value - 1 / expected) <= 1e-3 / expected:
        raise Incorrect("upside down: the untrained model's perplexity is the larger one.")
    if abs(value - (Q3["untrained"] - Q3["trained"])) < 1e-3:
        raise Incorrect("that is the difference of the losses in nats; the perplexities are exp(loss).")
    raise Incorrect(f"{value:g} is not it: perplexity = exp(loss) for each model, then divide.")


q3 = Exercise(
    name="q3",
    question=("An untrained model has a held-out MLM loss of 9.2 nats, the pretrained one 5.1 nats. By what factor is "
              "the pretrained model's perplexity lower?"),
    checker=_check_q3,
    hint_text="Perplexity = exp(loss). exp(a) / exp(b) = exp(a − b).",
    solution_code="import math\nfactor = math.exp(9.2) / math.exp(5.1)",
    answer_name="factor",
    wrong_answers=["factor = 9.2 / 5.1", "factor = 9.2 - 5.1", "import math\nfactor = math.exp(5.1 - 9.2)"],
)


# Two recipe changes, each scored against the old recipe on the same 17,500 held-out [MASK] positions: how many
# positions only the new recipe got right, and how many only the old one got right.
Q4 = {"A": {"only new right": 1210, "only old right": 1140},
      "B": {"only new right": 1260, "only old right": 1085}}


def q4_truth() -> dict[str, str]:
    from .. import stats

    truth = {}
    for change, counts in Q4.items():
        _, _, p = stats.mcnemar([True] * counts["only new right"] + [False] * counts["only old right"],
                                [False] * counts["only new right"] + [True] * counts["only old right"])
        better = counts["only new right"] > counts["only old right"]
        truth[change] = ("better" if better else "worse") if p < 0.05 else "no measurable difference"
    return truth


def _check_q4(answer):
    from .. import stats

    if not isinstance(answer, dict) or set(answer) != set(Q4):
        raise Incorrect('answer with a dict {"A": verdict, "B": verdict}.')
    words = {k: str(v).strip().lower() for k, v in answer.items()}
    for k, w in words.items():
        if w not in stats.VERDICTS:
            raise Incorrect(f"change {k}: answer with one of {list(stats.VERDICTS)}.")
    truth = q4_truth()
    wrong = [k for k in Q4 if words[k] != truth[k]]
    if wrong == ["A"] and words["A"] == "better":
        raise Incorrect("change A: more positions favour the new recipe, but is the imbalance larger than chance? Only "
                        "the positions where the two disagree count; test them with stats.mcnemar.")
    if wrong:
        raise Incorrect(f"change {', '.join(wrong)}: look only at the positions where the recipes disagree, and ask "
                        "whether their split is further from 50:50 than chance would make it (exact McNemar).")
    return None


q4 = Exercise(
    name="q4",
    question=("Two recipe changes, A and B, each scored against the old recipe on the same 17,500 held-out [MASK] "
              "positions. ex.Q4 gives, for each, how many positions only the new recipe got right and how many only "
              "the old one did. For each change: is the new recipe 'better', 'worse', or is there 'no measurable "
              "difference'?"),
    checker=_check_q4,
    hint_text=("Positions both get right or both get wrong say nothing about which is better. Under 'no difference', "
               "each disagreement is a coin flip: stats.mcnemar(correct_new, correct_old) gives the p-value — build "
               "the two boolean arrays from the counts."),
    solution_code=("from pretrain_lessons import stats\n"
                   "verdicts = {}\n"
                   "for change, c in ex.Q4.items():\n"
                   "    new = [True] * c['only new right'] + [False] * c['only old right']\n"
                   "    old = [not x for x in new]\n"
                   "    verdicts[change] = stats.compare(new, old).verdict"),
    answer_name="verdicts",
    setup="from pretrain_lessons.exercises import lesson04 as ex",
    wrong_answers=['verdicts = {"A": "better", "B": "better"}', 'verdicts = {"A": "no measurable difference", '
                   '"B": "no measurable difference"}', 'verdicts = {"A": "worse", "B": "better"}', "verdicts = 'better'"],
)


# ---------------------------------------------------------------- q5: accuracy where the model saw [MASK], and only there


def _q5_case():
    """Two rows of 6 positions: [MASK] id 4; labels −100 where nothing was chosen. The model copies what it sees."""
    ids = torch.tensor([[2, 4, 11, 4, 13, 3], [2, 21, 4, 22, 4, 3]])
    labels = torch.tensor([[-100, 10, 11, 12, -100, -100], [-100, 21, 30, -100, 23, -100]])
    guess = torch.tensor([[2, 10, 11, 7, 13, 3], [2, 21, 9, 22, 23, 3]])   # right at 2 of the 4 [MASK] positions
    logits = torch.full((2, 6, 40), -5.0)
    logits.scatter_(2, guess[..., None], 5.0)
    return ids, labels, logits


def _check_q5(fn):
    if not callable(fn):
        raise Incorrect("give a function mask_accuracy(input_ids, labels, logits, mask_token_id).")
    ids, labels, logits = _q5_case()
    got = number(call(fn, ids.clone(), labels.clone(), logits.clone(), 4), "return the accuracy as a number.")
    if abs(got - 0.5) < 1e-6:
        return None
    if abs(got - 50) < 1e-6:
        raise Incorrect("return a fraction between 0 and 1, not a percentage.")
    if abs(got - 4 / 6) < 1e-6:
        raise Incorrect("that counts every position with a label, including the two left unchanged (tokens 11 and "
                        "21), which the model gets right by copying them. Score only where the model saw [MASK].")
    if abs(got - 4 / 12) < 1e-6:
        raise Incorrect("that averages over every position; only labelled positions that show [MASK] count.")
    raise Incorrect(f"{got:g} is not it: the share of [MASK] positions (input_ids == mask_token_id, label ≠ −100) where "
                    "the model's top guess (argmax over the vocabulary) equals the label.")


q5 = Exercise(
    name="q5",
    question=("Write `mask_accuracy(input_ids, labels, logits, mask_token_id)`: the share of positions where the model "
              "saw `[MASK]` (and a label was set) at which its top guess is the label — the score this lesson trusts. "
              "`logits` has shape (batch, length, vocabulary)."),
    checker=_check_q5,
    hint_text=("Build a boolean tensor `at_mask = (input_ids == mask_token_id) & (labels != -100)`; the guesses are "
               "logits.argmax(-1); compare them with labels at at_mask only, then take the mean of a float tensor."),
    solution_code=("def mask_accuracy(input_ids, labels, logits, mask_token_id):\n"
                   "    at_mask = (input_ids == mask_token_id) & (labels != -100)\n"
                   "    right = logits.argmax(-1)[at_mask] == labels[at_mask]\n"
                   "    return right.float().mean().item()"),
    answer_name="mask_accuracy",
    wrong_answers=["def mask_accuracy(input_ids, labels, logits, mask_token_id):\n"
                   "    chosen = labels != -100\n"
                   "    return (logits.argmax(-1)[chosen] == labels[chosen]).float().mean().item()",
                   "def mask_accuracy(input_ids, labels, logits, mask_token_id):\n"
                   "    return (logits.argmax(-1) == labels).float().mean().item()",
                   "def mask_accuracy(input_ids, labels, logits, mask_token_id):\n"
                   "    at_mask = (input_ids == mask_token_id) & (labels != -100)\n"
                   "    return 100 * (logits.argmax(-1)[at_mask] == labels[at_mask]).float().mean().item()"],
)


# ---------------------------------------------------------------- q6: change the 80/10/10 mix (no random tokens)

# Token ids for q6: 1,000 rows of [CLS] + 62 ordinary tokens + [SEP], in a vocabulary of 1,000 whose first five ids are
# the special tokens ([PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4).
Q6_IDS = {"mask_token_id": 4, "vocab_size": 1000, "special_ids": [0, 1, 2, 3, 4]}
_q6 = torch.Generator().manual_seed(6)
Q6_BLOCKS = torch.cat([torch.full((1000, 1), 2), torch.randint(5, 1000, (1000, 62), generator=_q6),
                       torch.full((1000, 1), 3)], dim=1)
del _q6


def q6_shares(masked: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Shares measured on Q6_BLOCKS: chosen / ordinary tokens; [MASK], random and unchanged / chosen."""
    ordinary = ~torch.isin(Q6_BLOCKS, torch.tensor(Q6_IDS["special_ids"]))
    chosen = labels != -100
    n = max(1, int(chosen.sum()))
    return {"chosen": float(chosen.sum()) / int(ordinary.sum()),
            "mask": float((chosen & (masked == Q6_IDS["mask_token_id"])).sum()) / n,
            "random": float((chosen & (masked != Q6_IDS["mask_token_id"]) & (masked != Q6_BLOCKS)).sum()) / n,
            "unchanged": float((chosen & (masked == Q6_BLOCKS)).sum()) / n}


def _check_q6(answer):
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2
            and all(isinstance(t, torch.Tensor) for t in answer)):
        raise Incorrect("give the pair (masked input_ids, labels) that text.mask_tokens returns.")
    masked, labels = answer
    if masked.shape != Q6_BLOCKS.shape or labels.shape != Q6_BLOCKS.shape:
        raise Incorrect(f"mask ex.Q6_BLOCKS itself: both tensors must have its shape {tuple(Q6_BLOCKS.shape)}.")
    chosen = labels != -100
    if bool(chosen.all()):
        raise Incorrect("every position carries a label — seed 001's copy task. Let text.mask_tokens choose the "
                        "positions: the others get −100.")
    if not torch.equal(labels[chosen], Q6_BLOCKS[chosen]):
        raise Incorrect("the labels at the chosen positions must be the original tokens of ex.Q6_BLOCKS.")
    if not torch.equal(masked[~chosen], Q6_BLOCKS[~chosen]):
        raise Incorrect("tokens that were not chosen must stay as they are: mask ex.Q6_BLOCKS, not other blocks.")
    s = q6_shares(masked, labels)
    seen = (f"(measured: {100 * s['chosen']:.1f} % chosen; of those {100 * s['mask']:.1f} % [MASK], "
            f"{100 * s['random']:.1f} % random, {100 * s['unchanged']:.1f} % unchanged)")
    if abs(s["chosen"] - 0.15) > 0.01:
        raise Incorrect(f"choose 15 % of the ordinary tokens, as before {seen}. mlm_probability is the share chosen; "
                        "the other two probabilities split the chosen tokens.")
    if s["random"] > 0.005:
        if abs(s["random"] - 0.1) < 0.03 and abs(s["unchanged"] - 0.1) < 0.03:
            raise Incorrect(f"that is BERT's own 80/10/10 mix {seen}, the default. Change random_replace_prob so that no "
                            "chosen token becomes a random token.")
        if abs(s["random"] - 0.2) < 0.03:
            raise Incorrect(f"that is 80 % [MASK] and 20 % random tokens {seen}: random_replace_prob is the share "
                            "that becomes a random token. The unchanged share is what is left: 1 − mask − random.")
        raise Incorrect(f"some chosen tokens still become a random token {seen}: set random_replace_prob to 0.")
    if abs(s["mask"] - 0.8) > 0.03 or abs(s["unchanged"] - 0.2) > 0.03:
        raise Incorrect(f"no random tokens now, but the mix is not 80 % [MASK] and 20 % unchanged {seen}: "
                        "mask_replace_prob is the share of the chosen tokens shown as [MASK].")
    return f"{seen[1:-1]}. The unchanged 20 % is the share no parameter names: 1 − 0.8 − 0."


q6 = Exercise(
    name="q6",
    question=("Change the masking set-up: mask ex.Q6_BLOCKS with text.mask_tokens (its ids: **ex.Q6_IDS) so that 15 % of "
              "the ordinary tokens are chosen and, of those, 80 % become [MASK], none becomes a random token and 20 % "
              "stay unchanged. Give the (masked, labels) pair it returns."),
    checker=_check_q6,
    hint_text=("text.mask_tokens takes mlm_probability (the share of ordinary tokens chosen) and, for the chosen ones, "
               "mask_replace_prob and random_replace_prob. Nothing names the unchanged share: it is 1 − mask − random."),
    solution_code=("masked_and_labels = text.mask_tokens(ex.Q6_BLOCKS, mlm_probability=0.15, mask_replace_prob=0.8,\n"
                   "                                     random_replace_prob=0.0, **ex.Q6_IDS)"),
    answer_name="masked_and_labels",
    setup="from pretrain_lessons import text\nfrom pretrain_lessons.exercises import lesson04 as ex",
    wrong_answers=["masked_and_labels = text.mask_tokens(ex.Q6_BLOCKS, **ex.Q6_IDS)",
                   "masked_and_labels = text.mask_tokens(ex.Q6_BLOCKS, mlm_probability=0.15, mask_replace_prob=0.8, "
                   "random_replace_prob=0.2, **ex.Q6_IDS)",
                   "masked_and_labels = text.mask_tokens(ex.Q6_BLOCKS, mlm_probability=0.15 * 0.8, mask_replace_prob=1.0, "
                   "random_replace_prob=0.0, **ex.Q6_IDS)",
                   "masked_and_labels = text.mask_tokens(ex.Q6_BLOCKS, mlm_probability=0.15, mask_replace_prob=1.0, "
                   "random_replace_prob=0.0, **ex.Q6_IDS)",
                   "masked_and_labels = (ex.Q6_BLOCKS, ex.Q6_BLOCKS)"],
)
