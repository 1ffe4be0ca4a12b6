"""pretrain_lessons: the helper package of the pretraining and fine-tuning course (预训练与微调)."""
from __future__ import annotations

__version__ = "0.1.0"


def _register_nltk_data() -> None:
    """Let NLTK find the course's provisioned data (data/nltk_data) without any download."""
    try:
        import nltk
    except ImportError:
        return
    from .paths import data_dir

    folder = str(data_dir() / "nltk_data")
    if folder not in nltk.data.path:
        nltk.data.path.insert(0, folder)


_register_nltk_data()


def progress():
    """Your progress through the course's exercises: a table with a bar per lesson, from what each `q.check()`
    recorded (see `pretrain_lessons.learner_progress`). Run it as the last line of a cell."""
    from .learner_progress import progress as _progress

    return _progress()


def start(lesson: str, assets: tuple[str, ...] = (), seed: int = 0):
    """Begin a lesson: seed everything, make sure its data is in place, print scale and device; return the device."""
    import torch

    from . import scale
    from .data.provision import ensure
    from .device import get_device, seed_everything

    seed_everything(seed)
    ensure(*assets)
    device = get_device()
    print(f"Lesson {lesson} · scale {scale.current()} · device {device} · torch {torch.__version__.split('+')[0]} "
          f"· {torch.get_num_threads()} CPU threads · seed {seed}")
    if scale.current() == "smoke":
        print("Smoke scale: tiny runs that only check the code works — the numbers below are not meaningful.")
    return device
