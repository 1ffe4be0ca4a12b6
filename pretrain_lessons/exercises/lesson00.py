"""Exercises of 00_start_here: find your way around the course."""
from ..data.provision import load_manifest
from ..device import get_device
from .core import Exercise, Incorrect


def _check_q1(answer):
    if not isinstance(answer, str):
        raise Incorrect("give the term as a string, e.g. '预训练'.")
    if answer.strip() == "预训练":
        raise Incorrect("预训练 is pretraining — the first stage. Fine-tuning is the second stage; look it up in the glossary.")
    if answer.strip() != "微调":
        raise Incorrect(f"{answer!r} is not the term used in the glossary for fine-tuning.")


q1 = Exercise(
    name="q1",
    question="What is the Chinese term for fine-tuning? (The glossary above has it.)",
    checker=_check_q1,
    hint_text="Two characters; the seed articles pair it with 预训练 (pretraining): 预训练与微调.",
    solution_code="term = '微调'",
    answer_name="term",
    wrong_answers=["term = '预训练'", "term = 'fine-tuning'", "term = 42"],
)


def _check_q2(answer):
    expected = len(load_manifest())
    if not isinstance(answer, int) or isinstance(answer, bool):
        raise Incorrect("give a whole number.")
    if answer != expected:
        raise Incorrect(f"{answer} is not the number of assets in data/manifest.json; count the rows of the status table "
                        "or use len(load_manifest()).")


q2 = Exercise(
    name="q2",
    question="How many assets (data sets and pretrained weights) does the course's data manifest list?",
    checker=_check_q2,
    hint_text="`from pretrain_lessons.data import load_manifest` returns a dict with one entry per asset.",
    solution_code="from pretrain_lessons.data import load_manifest\nn_assets = len(load_manifest())",
    answer_name="n_assets",
    wrong_answers=["n_assets = 5", "n_assets = '8'"],
)


def _check_q3(answer):
    expected = get_device().type
    if not isinstance(answer, str):
        raise Incorrect("give the device type as a string such as 'cpu', 'cuda' or 'mps'.")
    if answer.strip().lower() != expected:
        raise Incorrect(f"the lessons will not train on {answer!r} here; ask get_device() and take its .type.")


q3 = Exercise(
    name="q3",
    question="Which kind of device will the lessons train on in this session? Answer 'cpu', 'cuda' or 'mps'.",
    checker=_check_q3,
    hint_text="`from pretrain_lessons.device import get_device`; the device's `.type` is the string you want.",
    solution_code="from pretrain_lessons.device import get_device\ndevice_type = get_device().type",
    answer_name="device_type",
    wrong_answers=["device_type = 'tpu'", "device_type = 0"],
)
