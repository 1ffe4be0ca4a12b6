"""Test session set-up: tests and notebooks run at smoke scale unless told otherwise."""
import os

os.environ.setdefault("PRETRAIN_LESSONS_SCALE", "smoke")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PRETRAIN_LESSONS_PROGRESS_FILE", "off")   # tests never write the learner's progress record
