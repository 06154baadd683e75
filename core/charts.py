"""PNG charts (matplotlib, Agg, no pyplot state) with Korean labels in NanumGothic."""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["bar_chart", "font_path"]

_PALETTE = "#2F6DB5"


@lru_cache(maxsize=1)
def font_path() -> Path:
    """NanumGothic shipped by ``koreanize-matplotlib``, found by path (the package is not imported,
    so matplotlib's global settings stay untouched)."""
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("koreanize-matplotlib is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "fonts" / "NanumGothic.ttf"
    if not path.is_file():
        raise RuntimeError(f"NanumGothic font missing at {path}")
    return path


def _font(size: float) -> Any:
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=str(font_path()), size=size)


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    horizontal: bool = False,
    width: float = 7.0,
) -> bytes:
    """A bar chart as PNG bytes. ``labels`` and ``values`` pair up; an empty chart says so.

    Thread-safe (one ``Figure`` per call, no pyplot): run it with ``asyncio.to_thread``.
    """
    if len(labels) != len(values):
        raise ValueError("labels and values must have the same length")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = max(len(labels), 1)
    height = max(2.5, 0.45 * count + 1.2) if horizontal else 4.0
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title(title, fontproperties=_font(13))
    positions = list(range(len(labels)))
    if horizontal:
        bars = axes.barh(positions, values, color=_PALETTE)
        axes.set_yticks(positions, list(labels))
        axes.invert_yaxis()  # first label on top
        tick_labels = axes.get_yticklabels()
    else:
        bars = axes.bar(positions, values, color=_PALETTE)
        axes.set_xticks(positions, list(labels))
        tick_labels = axes.get_xticklabels()
    for label in tick_labels:
        label.set_fontproperties(_font(10))
    axes.bar_label(bars, labels=[_number(v) for v in values], fontproperties=_font(9), padding=2)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if not labels:
        axes.text(0.5, 0.5, "—", ha="center", va="center", transform=axes.transAxes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"
