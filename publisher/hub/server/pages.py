"""Pages for a browser: ``/`` lists the repos you may see, ``/{ns}/{name}`` shows one with its card.

Jinja2 with autoescape, and markdown-it with raw HTML disabled, so a card can never inject
markup or script into the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import Environment
from markdown_it import MarkdownIt
from markupsafe import Markup

from publisher.hub.cardcheck import FRONT_MATTER
from publisher.hub.server.errors import NotFound
from publisher.hub.server.http import Request, Response, Router
from publisher.hub.server.views import card_data

if TYPE_CHECKING:
    from publisher.hub.server.app import HubApp

_ENV = Environment(autoescape=True)
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}"
    "code,pre{background:#f5f5f5}pre{padding:.5rem;overflow:auto}.meta{color:#666}"
)
_INDEX = _ENV.from_string(
    """<!doctype html><html><head><meta charset="utf-8"><title>Local Hub</title><style>{{ style }}</style></head>
<body><h1>Local Hub</h1>
{% if repos %}<table><tr><th>Repo</th><th>Type</th><th>Updated</th><th>Tags</th></tr>
{% for r in repos %}<tr><td><a href="/{{ r.prefix }}{{ r.id }}">{{ r.id }}</a>{% if r.private %} (private){% endif %}</td>
<td>{{ r.type }}</td><td>{{ r.updated }}</td><td>{{ r.tags | join(", ") }}</td></tr>{% endfor %}</table>
{% else %}<p>No repositories yet.</p>{% endif %}</body></html>"""
)
_REPO = _ENV.from_string(
    """<!doctype html><html><head><meta charset="utf-8"><title>{{ id }}</title><style>{{ style }}</style></head>
<body><p><a href="/">Local Hub</a></p><h1>{{ id }}</h1>
<p class="meta">{% if private %}private · {% endif %}main at <code>{{ sha[:7] }}</code> · {{ updated }}
{% if tags %} · tags: {% for t in tags %}<code>{{ t }}</code> {% endfor %}{% endif %}</p>
{% if metadata %}<details><summary>Metadata</summary><pre>{{ metadata }}</pre></details>{% endif %}
<article>{{ card_html }}</article>
<h2>Files</h2><table><tr><th>Path</th><th>Size</th><th></th></tr>
{% for f in files %}<tr><td><a href="/{{ prefix }}{{ id }}/resolve/main/{{ f.path }}">{{ f.path }}</a></td><td>{{ f.size }}</td>
<td>{% if f.lfs %}LFS{% endif %}</td></tr>{% endfor %}</table>
<h2>History</h2><ul>{% for c in commits %}<li><code>{{ c.id[:7] }}</code> {{ c.title }} <span class="meta">{{ c.author }}, {{ c.date }}</span></li>{% endfor %}</ul>
</body></html>"""
)
_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def register(app: HubApp, router: Router) -> None:
    def index(req: Request) -> Response:
        who = app.identity(req)
        repos: list[dict[str, Any]] = []
        for key in app.store.list_keys():
            repo = app.store.get(key)
            if repo is None or not app.can_read(who, repo):
                continue
            head = repo.branch_head("main")
            snap = repo.snapshot(head) if head else None
            card = card_data(repo, snap) if snap else None
            tags = card.get("tags") if card else None
            repos.append(
                {
                    "id": key.repo_id,
                    "prefix": key.url_prefix,
                    "type": key.repo_type,
                    "private": repo.meta.private,
                    "updated": snap.commit.date if snap else "",
                    "tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
                }
            )
        return Response.html(_INDEX.render(repos=repos, style=_STYLE))

    def repo_page(req: Request) -> Response:
        rtype = {"models": "models", "datasets": "dataset", "spaces": "space"}.get(req.params.get("rtype", "models"), "")
        if not rtype:
            raise NotFound(f"no page {req.path}")
        rtype = "model" if rtype == "models" else rtype
        repo = app.read_repo(req, app.key(rtype, req.params["ns"], req.params["name"]))
        head = repo.resolve("main")
        snap = repo.snapshot(head)
        readme = snap.files.get("README.md")
        card_html, metadata = "", ""
        if readme is not None and not readme.lfs:
            text = repo.read_blob(readme.blob_id).decode("utf-8", "replace")
            m = FRONT_MATTER.match(text)
            if m:
                metadata, text = m.group(2), text[m.end() :]
            card_html = _MD.render(text)
        card = card_data(repo, snap) or {}
        tags = [t for t in card.get("tags", []) if isinstance(t, str)] if isinstance(card.get("tags"), list) else []
        files = [
            {"path": e.path, "size": human_size(e.size), "lfs": e.lfs is not None}
            for e in sorted(snap.files.values(), key=lambda e: e.path)
        ]
        commits = [{"id": c.id, "title": c.title, "author": c.author, "date": c.date} for c in repo.history(head)][:50]
        html = _REPO.render(
            id=repo.key.repo_id,
            prefix=repo.key.url_prefix,
            private=repo.meta.private,
            sha=head,
            updated=snap.commit.date,
            tags=tags,
            metadata=metadata,
            card_html=Markup(card_html),  # markdown-it output with raw HTML disabled
            files=files,
            commits=commits,
            style=_STYLE,
        )
        return Response.html(html)

    router.add("GET", "/", index)
    router.add("GET", "/{ns}/{name}", repo_page)
    router.add("GET", "/{rtype}/{ns}/{name}", repo_page)
