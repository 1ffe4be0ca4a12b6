"""Progress bars: live widgets in notebooks, text in terminals; PRETRAIN_LESSONS_PROGRESS=text|off overrides."""
from __future__ import annotations

import os

from tqdm.std import tqdm as _text_tqdm


class _StoredBar(_text_tqdm):
    """A text bar for stored notebook outputs: one line when it closes (what was done, how long it took), written in
    one piece with its newline. Nothing is drawn on the way: every redraw would stay in the stored output as a
    fragment of its own."""

    def display(self, msg=None, pos=None):
        return True

    def close(self):
        if self.disable:
            return
        final = None
        if self.leave and self.n:
            self._ema_dt = lambda: None   # the overall rate in the final line, as tqdm's own close() does
            final = "\r" + self.__str__() + "\n"
        self.leave = False                # tqdm's close() then only "clears" (writes nothing, see display)
        super().close()
        if final:
            self.fp.write(final)
            self.fp.flush()


def bar(iterable=None, **kwargs):
    """A tqdm progress bar in the style PRETRAIN_LESSONS_PROGRESS asks for (auto, text or off)."""
    mode = os.environ.get("PRETRAIN_LESSONS_PROGRESS", "auto").lower()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        # Stored notebook outputs: the final state of each bar, not hundreds of redraws; a bar that erases itself
        # would leave nothing worth keeping, so it is not drawn at all.
        if not kwargs.get("leave", True):
            kwargs["disable"] = True
        kwargs.setdefault("ascii", True)
        kwargs.pop("dynamic_ncols", None)
        kwargs.setdefault("ncols", 100)
        return _StoredBar(iterable, **kwargs)
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
