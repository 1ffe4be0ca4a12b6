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
