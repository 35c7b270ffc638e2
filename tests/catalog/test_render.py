"""Card Markdown to safe HTML, and the lineage layout."""

from __future__ import annotations

import re

from publisher.catalog.graph import layers_of, layout
from publisher.catalog.markdown import first_paragraph, render_card
from publisher.catalog.schema import LineageData, LineageNodeData


def test_markdown_is_rendered_and_raw_html_is_text() -> None:
    html = render_card(
        "# acme/m\n\nIntro **bold** and `code`.\n\n## Use\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        '<div onclick="x()">hi</div>\n\n<iframe src="https://e.org"></iframe>\n\n'
        "text <span style=\"x\">s</span> <!-- c --> [a](https://ok.org) [b](javascript:alert(1)) [c](data:text/html,x)\n",
        title="acme/m",
    )
    assert not re.search(r"<(div|iframe|span)\b", html) and "<!--" not in html
    assert "&lt;div onclick=&quot;x()&quot;&gt;hi&lt;/div&gt;" in html and "&lt;iframe" in html
    assert "<h1>" not in html and "<h3>Use</h3>" in html  # the title dropped, headings one level down
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html and "<td>2</td>" in html
    assert '<a href="https://ok.org" rel="noopener noreferrer">a</a>' in html
    assert "javascript:" not in html.replace("[b](javascript:alert(1))", "")  # left as text, never a link
    assert 'href="data:' not in html


def test_allowed_tags_stay_balanced() -> None:
    html = render_card("<details>\n<summary>More</summary>\n\nbody <b>x\n\n</details>\n\n</details></article>\n")
    assert html.count("<details>") == html.count("</details>") == 1
    assert "<summary>More</summary>" in html and "<b>x</b></p>" in html
    assert "&lt;/details&gt;&lt;/article&gt;" in html  # a closing tag the card never opened is text
    unclosed = render_card("<details>\n<summary>s</summary>\n\ntext\n")
    assert unclosed.rstrip().endswith("</details>")
    assert "&lt;b class=&quot;x&quot;&gt;" in render_card('<b class="x">attrs are never allowed</b>')


def test_images_are_links_and_mermaid_is_source() -> None:
    html = render_card("![chart](https://e.org/c.png) ![inline](data:image/png;base64,AAAA)\n\n```mermaid\ngraph TD\n a-->b\n```\n")
    assert "<img" not in html
    assert '<a class="image-ref" href="https://e.org/c.png" rel="noopener noreferrer">[image: chart]</a>' in html
    assert '<span class="image-ref">[image: inline]</span>' in html
    assert '<details class="mermaid-source">' in html and "a--&gt;b" in html


def test_first_paragraph_is_plain_text() -> None:
    body = "# t\n\n| a |\n|---|\n| x |\n\nThe **model** merges `a` and [b](https://b).\nSecond line.\n\nMore.\n"
    assert first_paragraph(body) == "The model merges a and b. Second line."
    assert len(first_paragraph("word " * 200)) <= 400


def _node(i: str, label: str, root: bool = False, status: str = "ok") -> LineageNodeData:
    return LineageNodeData(id=i, repo_id=label, label=label, status=status, relation="merge" if root else None,
                           method="slerp" if root else None, license="mit", note=None, page=None, is_root=root)


def test_layout_layers_route_long_edges_and_survive_cycles() -> None:
    # m <- a, m <- b, a <- b (b is a parent of both): b must sit above a, and b -> m goes around a
    data = LineageData(
        nodes=[_node("n0", "o/m", root=True), _node("n1", "o/a"), _node("n2", "o/b")],
        edges=[("n1", "n0"), ("n2", "n0"), ("n2", "n1")], gaps=[],
    )
    assert layers_of(data) == {"n0": 0, "n1": 1, "n2": 2}
    g = layout(data)
    by_id = {n.id: n for n in g.nodes}
    assert by_id["n2"].y < by_id["n1"].y < by_id["n0"].y
    long_edge = g.edges[1].path  # b -> m passes its row through a virtual node: a straight segment
    assert " L" in long_edge and long_edge.count("C") == 2
    a = by_id["n1"]
    xs = [float(x) for x in re.findall(r"L([\d.]+),", long_edge)]
    assert all(x < a.x or x > a.x + a.w for x in xs)  # not through a's box
    cyclic = LineageData(
        nodes=[_node("n0", "o/m", root=True), _node("n1", "o/a", status="cycle")],
        edges=[("n1", "n0"), ("n0", "n1")], gaps=[],
    )
    g = layout(cyclic)  # terminates; the edge against the flow is marked
    assert [e.upward for e in g.edges] == [False, True]
