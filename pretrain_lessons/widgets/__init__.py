"""Interactive demos (ipywidgets): one module per lesson, each function returning a widget to display.

Shared helpers live here; e.g. `from pretrain_lessons.widgets.lesson01 import probability_slider`.
"""
from __future__ import annotations


def figure_output(fig) -> None:
    """Show a matplotlib figure inside an ipywidgets Output and close it (no duplicate static copy)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    display(fig)
    plt.close(fig)
