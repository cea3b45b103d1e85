"""The report's charts as inline SVG, drawn with pygal (pure Python, no JavaScript needed, SVG
styled by one <style> element; matplotlib would bring NumPy and inline style attributes).

pygal's SVG is made fit for a page without script and for screen readers by one XML filter:
its <script> elements, tooltips and comments go (the comment carries the day it was drawn,
which would make two renderings of one report differ), and the <svg> gets role="img" with a
<title> and <desc> that name what it shows. The numbers are in a table next to each chart."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pygal
from pygal.style import Style

SVG = "{http://www.w3.org/2000/svg}"
SECOND_COLOUR = "#9c4500"  # dark orange: 5.6:1 on white, next to the service's primary blue
THIRD_COLOUR = "#2b6a2f"


def style(primary: str) -> Style:
    return Style(
        background="#ffffff", plot_background="#ffffff", foreground="#1a1a1a",
        foreground_strong="#1a1a1a", foreground_subtle="#4a4a4a",
        colors=(primary, SECOND_COLOUR, THIRD_COLOUR), opacity="1", opacity_hover="1",
        transition="0s", font_family='"Source Sans 3", "Segoe UI", Arial, sans-serif',
        label_font_size=13, major_label_font_size=13, legend_font_size=14, title_font_size=16,
        value_font_size=13,
    )


def _accessible(name: str, title: str, desc: str) -> Callable[[Any], Any]:
    """The XML filter: no script, tooltips or comments; role="img", <title>, <desc>."""

    def apply(root: Any) -> Any:
        for element in list(root.iter()):
            tag = element.tag if isinstance(element.tag, str) else ""
            parent = element.getparent() if hasattr(element, "getparent") else None
            if parent is None:
                continue
            if (not tag or tag.endswith("script")
                    or "tooltip" in (element.get("class") or "").split()):
                parent.remove(element)
        for element in list(root):
            if not isinstance(element.tag, str):
                root.remove(element)
        root.set("role", "img")
        root.set("aria-labelledby", f"{name}-title {name}-desc")
        root.set("focusable", "false")
        title_node = root.makeelement(f"{SVG}title", {"id": f"{name}-title"})
        title_node.text = title
        desc_node = root.makeelement(f"{SVG}desc", {"id": f"{name}-desc"})
        desc_node.text = desc
        root.insert(0, desc_node)
        root.insert(0, title_node)
        return root

    return apply


def _chart(kind: type[Any], name: str, title: str, desc: str, primary: str,
           **options: Any) -> Any:
    settings: dict[str, Any] = {
        "width": 800, "height": 340, "show_legend": True, "legend_at_bottom": True,
        "truncate_label": -1, "truncate_legend": -1, "print_values": False,
        "no_data_text": "Keine Daten"}
    settings.update(options)
    chart = kind(style=style(primary), js=[], disable_xml_declaration=True, **settings)
    chart.add_xml_filter(_accessible(name, title, desc))
    chart.uuid = name  # stable ids: the same report renders to the same bytes
    return chart


def bars_by_week(name: str, title: str, desc: str, weeks: Sequence[str],
                 series: Sequence[tuple[str, Sequence[int]]], primary: str) -> str:
    chart = _chart(pygal.Bar, name, title, desc, primary, x_label_rotation=60,
                   show_minor_x_labels=False,
                   x_labels_major_every=max(1, len(weeks) // 13))
    chart.x_labels = list(weeks)
    for label, values in series:
        chart.add(label, list(values))
    return _render(chart)


def line_by_week(name: str, title: str, desc: str, weeks: Sequence[str], label: str,
                 values: Sequence[int], primary: str) -> str:
    chart = _chart(pygal.Line, name, title, desc, primary, x_label_rotation=60,
                   show_minor_x_labels=False, show_legend=False, fill=False, dots_size=2,
                   x_labels_major_every=max(1, len(weeks) // 13))
    chart.x_labels = list(weeks)
    chart.add(label, list(values))
    return _render(chart)


def horizontal_bars(name: str, title: str, desc: str, items: Sequence[tuple[str, int]],
                    label: str, primary: str) -> str:
    height = max(160, 60 + 34 * len(items))
    chart = _chart(pygal.HorizontalBar, name, title, desc, primary, show_legend=False,
                   height=height)
    chart.x_labels = [item for item, _ in items]
    chart.add(label, [count for _, count in items])
    return _render(chart)


def _render(chart: Any) -> str:
    return str(chart.render(is_unicode=True))
