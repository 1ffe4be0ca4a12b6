"""Progress bars: live widgets in notebooks, text in terminals; PRETRAIN_LESSONS_PROGRESS=text|off overrides."""
from __future__ import annotations

import os


def bar(iterable=None, **kwargs):
    """A tqdm progress bar in the style PRETRAIN_LESSONS_PROGRESS asks for (auto, text or off)."""
    mode = os.environ.get("PRETRAIN_LESSONS_PROGRESS", "auto").lower()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        # Stored notebook outputs: the first and the final state of each bar, not hundreds of redraws.
        from tqdm.std import tqdm

        kwargs.setdefault("mininterval", 60.0)
        kwargs.setdefault("ascii", True)
        kwargs.pop("dynamic_ncols", None)
        kwargs.setdefault("ncols", 100)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
