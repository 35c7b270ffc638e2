"""Versioned, idempotent publishing of a build directory to a Hub (the real one or the local one).

Per variant repo, one version is one commit holding every file, tagged ``v{version}``:

1. Read the build: the manifest's files (its sha256 are the LFS oids; nothing is re-hashed)
   plus README.md (and manifest.json for the merged model), hashed here.
2. Check every card offline, then with the server's validate-yaml: a card the Hub would
   reject stops everything before the first write.
3. Plan every repo read-only: compare with the tag (identical → nothing to do; other
   weights → refuse, tags never move; only the card differs → a card-only commit on main)
   or with main (the files to add, change and delete).
4. Execute: create the repo if needed, ONE ``create_commit`` with ``parent_commit`` (so a
   racing writer gives 412, never a silent overwrite), then ``create_tag``. Unchanged files
   are not in the commit, so they are never uploaded again.

An interruption anywhere leaves each repo at its previous version, or at the new commit
without its tag; a re-run finds the commit's content on main and only adds the tag.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from publisher.check.results import require_passed
from publisher.errors import (
    CardError,
    HubError,
    Interrupted,
    PublisherError,
    PublishError,
)
from publisher.hub import oidc
from publisher.hub.cardcheck import check_card
from publisher.hub.ids import InvalidName, check_ref_name
from publisher.hub.local_build import (
    CARD,
    LocalFile,
    PublishSettings,
    VariantBuild,
    is_card_file,
    publish_settings,
    read_build,
)
from publisher.hub.pinning import pin_variants, shadow_copy, unpinned
from publisher.hub.publish_plan import (
    Change,
    PublishReport,
    RemoteText,
    RepoPlan,
    RepoResult,
    State,
    _conflict,
    _dry,
    _title,
    bump,
    diff,
    human_size,
)
from publisher.hub.reach import Unreachable
from publisher.hub.remote import (
    Retry,
    client_settings,
    describe,
    make_api,
    resolve_endpoint,
    resolve_token,
    status_of,
)
from publisher.manifest import MANIFEST_FILE, Manifest

if TYPE_CHECKING:
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

__all__ = [
    "CARD", "Change", "LocalFile", "PublishReport", "PublishSettings", "Publisher", "RepoPlan", "RepoResult",
    "State", "VariantBuild", "bump", "diff", "human_size", "publish", "publish_settings", "read_build",
]


class Publisher:
    """One publishing run against one endpoint; ``publish()`` below is the usual entry point."""

    def __init__(
        self, api: HfApi, token: str | None, retry: Retry, log: Callable[[str], None],
        commit_message: str | None = None,
    ) -> None:
        self.api = api
        self.commit_message = commit_message
        self.token = token
        self.retry = retry
        self.log = log

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        return self.retry.call(fn, what, self.token)

    def _files_at(self, repo_id: str, commit: str) -> dict[str, RepoFile]:
        from huggingface_hub.hf_api import RepoFile

        def listing() -> dict[str, RepoFile]:
            items = self.api.list_repo_tree(repo_id, revision=commit, recursive=True)
            return {i.path: i for i in items if isinstance(i, RepoFile)}

        return self._call(listing, f"listing {repo_id}@{commit[:7]}")

    def _text_at(self, repo_id: str, commit: str) -> RemoteText:
        """Reads a (small) file of the repo at ``commit``; only called when a card's bytes differ."""

        def read(path: str) -> str | None:
            from huggingface_hub.errors import EntryNotFoundError

            with tempfile.TemporaryDirectory(prefix=".publisher-card-") as tmp:
                try:
                    local = self._call(
                        lambda: self.api.hf_hub_download(repo_id, path, revision=commit, cache_dir=tmp),
                        f"reading {repo_id}/{path}@{commit[:7]}",
                    )
                except EntryNotFoundError:
                    return None
                return Path(local).read_text(encoding="utf-8", errors="replace")

        return read

    def tag_commit(self, repo_id: str, tag: str) -> str | None:
        refs = self._refs(repo_id)
        return refs[1].get(tag) if refs is not None else None

    def _refs(self, repo_id: str) -> tuple[str | None, dict[str, str]] | None:
        """(main's head, {tag: commit}), or None when the repo does not exist (or is not visible)."""
        from huggingface_hub.errors import RepositoryNotFoundError

        try:
            refs = self._call(lambda: self.api.list_repo_refs(repo_id), f"reading refs of {repo_id}")
        except RepositoryNotFoundError:
            return None
        head = next((b.target_commit for b in refs.branches if b.name == "main"), None)
        return head, {t.name: t.target_commit for t in refs.tags}

    def _check_visibility(self, repo_id: str, private: bool) -> None:
        info = self._call(lambda: self.api.repo_info(repo_id), f"reading {repo_id}")
        if private and not info.private:
            raise PublishError(
                "the recipe says publish.private: true but the repo is public", where=repo_id,
                fix="make the repo private on the Hub first (publisher never changes visibility)",
            )

    def plan(self, build: VariantBuild, tag: str, private: bool) -> RepoPlan:
        refs = self._refs(build.repo_id)
        if refs is None:
            changes = [Change(p, "add", f.size) for p, f in sorted(build.files.items())]
            return RepoPlan(build, tag, private, exists=False, state="publish", changes=changes)
        head, tags = refs
        if head is None:
            raise PublishError(f"{build.repo_id} has no main branch", fix="create it, or delete the repo")
        self._check_visibility(build.repo_id, private)
        head_files = self._files_at(build.repo_id, head)
        if tag not in tags:
            changes = diff(build.files, head_files, self._text_at(build.repo_id, head))
            state: State = "publish" if changes else "tag-only"
            return RepoPlan(build, tag, private, True, state, head, changes)
        tagged = tags[tag]
        tag_files = head_files if tagged == head else self._files_at(build.repo_id, tagged)
        vs_tag = diff(build.files, tag_files, self._text_at(build.repo_id, tagged))
        if any(not is_card_file(c.path) for c in vs_tag):
            shown = ", ".join(f"{c.path} ({c.kind})" for c in vs_tag if not is_card_file(c.path))
            return RepoPlan(
                build, tag, private, True, "conflict", head, vs_tag,
                note=f"{tag} already holds different files: {shown}",
            )
        vs_head = diff(build.files, head_files, self._text_at(build.repo_id, head))
        if not vs_head:
            return RepoPlan(build, tag, private, True, "up-to-date", head)
        if all(is_card_file(c.path) for c in vs_head) and not any(not is_card_file(c.path) for c in diff(
            {p: f for p, f in build.files.items() if not is_card_file(p)},
            {p: f for p, f in head_files.items() if not is_card_file(p)},
        )):
            return RepoPlan(build, tag, private, True, "card-update", head, vs_head)
        return RepoPlan(
            build, tag, private, True, "up-to-date", head,
            note=f"main has moved past {tag}; its card was left as is",
        )

    # ------------------------------------------------------------------------ writes
    def execute(self, plan: RepoPlan, version: str, manifest: Manifest) -> RepoResult:
        from huggingface_hub.errors import HfHubHTTPError

        result = RepoResult(plan.repo_id, plan.build.name, plan.tag, "up to date", plan.changes, plan.base_commit, 0,
                            plan.note, plan.private)
        if plan.state == "up-to-date":
            return result
        if not plan.exists:
            self.log(f"creating {plan.repo_id} ({'private' if plan.private else 'public'})")
            self._call(
                lambda: self.api.create_repo(plan.repo_id, private=plan.private, exist_ok=True),
                f"creating {plan.repo_id}",
            )
            plan = self.plan(plan.build, plan.tag, plan.private)
            result.changes = plan.changes
            if plan.state in ("up-to-date", "conflict"):
                return self._settle(plan, result)
        stale = 0  # 412s seen: a moved main is re-checked and retried once
        for _ in range(4):
            try:
                if plan.state in ("publish", "card-update"):
                    result.commit = self._commit(plan, version, manifest)
                    result.sent_bytes = sum(c.size for c in plan.changes if c.kind != "delete")
                elif plan.state == "publish-landed":
                    result.commit = plan.base_commit
                    result.sent_bytes = sum(c.size for c in result.changes if c.kind != "delete")
                else:
                    result.commit = plan.base_commit
                if plan.state == "card-update":
                    result.action = "card updated"
                    return result
                self._tag(plan, result.commit, version)
                result.action = "tagged" if plan.state == "tag-only" else "published"
                return result
            except HfHubHTTPError as err:
                status = status_of(err)
                stale += status == 412
                if status not in (409, 412):
                    raise
                if stale > 1:
                    raise PublishError(
                        f"{plan.repo_id} changed twice while publishing {plan.tag}",
                        fix="another publisher is writing to it; re-run when it is done",
                    ) from None
                self.log(f"{plan.repo_id}: {'main moved' if status == 412 else plan.tag + ' appeared'}; re-checking")
                planned = plan
                plan = self._replan_after_race(plan)
                if plan.state == "tag-only" and planned.state == "publish":
                    # main already holds exactly this version (a retried commit had landed):
                    # only the tag is missing, and the result is still this run's publication
                    plan.state = "publish-landed"
                result.changes = plan.changes or result.changes
                if plan.state in ("up-to-date", "conflict"):
                    return self._settle(plan, result)
        raise AssertionError("unreachable")

    def _settle(self, plan: RepoPlan, result: RepoResult) -> RepoResult:
        if plan.state == "conflict":
            raise _conflict(plan)
        result.action, result.note = "up to date", plan.note or "published by a concurrent run"
        result.commit = plan.base_commit
        return result

    def _replan_after_race(self, plan: RepoPlan) -> RepoPlan:
        new = self.plan(plan.build, plan.tag, plan.private)
        if new.state == "publish" and new.base_commit:
            head = self._call(lambda: self.api.list_repo_commits(plan.repo_id, revision=new.base_commit)[0],
                              f"reading {plan.repo_id} history")
            if head.title == _title(plan.tag):
                new.state, new.note = "conflict", f"another run is publishing {plan.tag} with different files"
        return new

    def _commit(self, plan: RepoPlan, version: str, manifest: Manifest) -> str:
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        ops: list[Any] = []
        for c in plan.changes:
            if c.kind == "delete":
                ops.append(CommitOperationDelete(c.path))
                continue
            lf = plan.build.files[c.path]
            op = CommitOperationAdd(path_in_repo=lf.path, path_or_fileobj=str(lf.source))
            op.upload_info.sha256 = bytes.fromhex(lf.sha256)  # from the manifest: never re-hashed
            ops.append(op)
        title = _title(plan.tag) if plan.state == "publish" else f"Update model card ({plan.tag})"
        description = "\n".join(
            ([self.commit_message.strip(), ""] if self.commit_message else [])
            + [
                f"Recipe {manifest.recipe_name} version {version}, variant {plan.build.name}.",
                f"Recipe sha256 {manifest.recipe_sha256}; built by {manifest.tool}.",
            ]
        )
        size = sum(c.size for c in plan.changes if c.kind != "delete")
        self.log(f"{plan.repo_id}: committing {len(ops)} file(s), {human_size(size)} to send at most")
        info = self._call(
            lambda: self.api.create_commit(
                plan.repo_id, ops, commit_message=title, commit_description=description,
                parent_commit=plan.base_commit,
            ),
            f"committing to {plan.repo_id}",
        )
        return str(info.oid)

    def _tag(self, plan: RepoPlan, commit: str | None, version: str) -> None:
        self.log(f"{plan.repo_id}: tagging {commit[:7] if commit else '?'} as {plan.tag}")
        self._call(
            lambda: self.api.create_tag(
                plan.repo_id, tag=plan.tag, revision=commit,
                tag_message=f"{plan.repo_id} {plan.tag} ({plan.build.name})",
            ),
            f"tagging {plan.repo_id}",
        )


# ---------------------------------------------------------------------------- entry point
def publish(
    build_dir: Path | str,
    *,
    dry_run: bool = False,
    endpoint: str | None = None,
    token: str | None = None,
    retry: Retry | None = None,
    log: Callable[[str], None] | None = None,
) -> PublishReport:
    """Publish every variant of ``build_dir``; see the module docstring. Raises PublisherError.

    Stages the build merges that are to be their own repos (hub/stages.py) are published
    first, and the build pinned to their commits; their results lead the report."""
    from publisher.hub.stages import publish_stages

    build_dir = Path(build_dir)
    stage_results = publish_stages(
        build_dir,
        lambda folder: publish(folder, dry_run=dry_run, endpoint=endpoint, token=token, retry=retry, log=log).results,
        dry_run=dry_run,
        log=log or (lambda _msg: None),
    )
    report = _publish_one(build_dir, dry_run=dry_run, endpoint=endpoint, token=token, retry=retry, log=log)
    report.results[:0] = stage_results
    return report


def _publish_one(
    build_dir: Path,
    *,
    dry_run: bool,
    endpoint: str | None,
    token: str | None,
    retry: Retry | None,
    log: Callable[[str], None] | None,
) -> PublishReport:
    manifest, builds = read_build(build_dir)
    require_passed(build_dir)  # the release gate: never publish a build whose checks failed
    version = str(manifest.recipe_version)
    tag = f"v{version}"
    try:
        check_ref_name(tag, "tag")
    except InvalidName as e:
        raise PublishError(str(e), where=str(build_dir / MANIFEST_FILE), fix="use a version such as 1.0.0") from e
    settings = publish_settings(build_dir)
    private = settings.private
    for b in builds:
        _check_offline(b)

    endpoint = resolve_endpoint(endpoint)
    token = resolve_token(token)
    log = log or (lambda _msg: None)
    # trusted publishing (GitHub OIDC) first, HF_TOKEN as the fallback: see hub/oidc.py
    api, trusted = oidc.scoped_api(make_api(endpoint, token), endpoint, [b.repo_id for b in builds], token, log)
    if not token and not trusted and not dry_run:
        raise PublishError(
            f"no Hub token for {endpoint}", fix="set HF_TOKEN or run `hf auth login` (a write token)"
        )
    publisher = Publisher(api, token, retry or Retry(), log, settings.commit_message)
    try:
        with client_settings(endpoint):
            return _run(publisher, build_dir, builds, manifest, version, tag, private, dry_run, endpoint, token)
    except Unreachable as e:
        if e.repo_id:
            raise
        raise Unreachable(e.base_url, e.reason, ", ".join(b.repo_id for b in builds)) from None


def _check_offline(b: VariantBuild) -> None:
    result = check_card(b.card)
    if result.errors:
        raise CardError(
            f"the card would be rejected: {'; '.join(result.errors)}", where=str(b.folder / CARD),
            fix="fix the card (or the recipe's card section) and run `publisher card` again",
        )
    _parse_with_client(b)


def _pinned(
    publisher: Publisher, build_dir: Path, builds: list[VariantBuild], tag: str,
    scratch: contextlib.ExitStack | None = None,
) -> list[VariantBuild]:
    """The builds, each quantized variant pinned to the merged repo's commit at ``tag`` when it exists.

    ``scratch``: a dry run pins a hard-linked copy (in a folder beside the build, removed with it).
    """
    merged = next((b for b in builds if b.name == "merged"), None)
    commit = publisher.tag_commit(merged.repo_id, tag) if merged is not None else None
    if commit is None or not unpinned(build_dir, commit):
        return builds
    if scratch is not None:
        shadow = scratch.enter_context(tempfile.TemporaryDirectory(prefix=f".{build_dir.name}.dry-", dir=build_dir.parent))
        build_dir = shadow_copy(build_dir, Path(shadow))
    pin_variants(build_dir, commit, publisher.log)
    _, fresh = read_build(build_dir)
    for b in fresh:
        if b.name != "merged":
            _check_offline(b)
            _validate_remote(publisher, b)
    return fresh


def _run(
    publisher: Publisher, build_dir: Path, builds: list[VariantBuild], manifest: Manifest, version: str, tag: str,
    private: bool, dry_run: bool, endpoint: str, token: str | None,
) -> PublishReport:
    try:
        for b in builds:
            _validate_remote(publisher, b)
        if dry_run:
            with contextlib.ExitStack() as scratch:
                builds = _pinned(publisher, build_dir, builds, tag, scratch)
                plans = [publisher.plan(b, tag, private) for b in builds]
            conflicts = [p for p in plans if p.state == "conflict"]
            if conflicts:
                raise _conflict(conflicts[0])
            return PublishReport(endpoint, version, True, [_dry(p) for p in plans])
        builds = _pinned(publisher, build_dir, builds, tag)
        plans = [publisher.plan(b, tag, private) for b in builds]
        conflicts = [p for p in plans if p.state == "conflict"]
        if conflicts:
            raise _conflict(conflicts[0])
        results = []
        for plan in plans:
            if plan.build.name != "merged":  # the merged repo is published by now: pin to its commit
                fresh = {b.name: b for b in _pinned(publisher, build_dir, builds, tag)}
                if fresh[plan.build.name] is not plan.build:
                    plan = publisher.plan(fresh[plan.build.name], tag, private)
                    if plan.state == "conflict":
                        raise _conflict(plan)
            results.append(publisher.execute(plan, version, manifest))
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted: every repo is at its previous version or fully committed",
            fix="re-run the same command to finish",
        ) from None
    except PublisherError:
        raise
    except Exception as err:
        chain = _causes(err)
        if not any(_is_remote_failure(e) for e in chain):
            raise
        from huggingface_hub.errors import HfHubHTTPError

        # up to the first HTTP error: its server message says it all (deeper: raw URLs)
        cut = next((i for i, e in enumerate(chain) if isinstance(e, HfHubHTTPError)), len(chain) - 1)
        text = ": ".join(dict.fromkeys(describe(e, token).rstrip(".") for e in chain[: cut + 1]))
        raise HubError(f"publishing to {endpoint} failed: {text}",
                       fix="nothing half-published is visible; re-run the same command") from None
    return PublishReport(endpoint, version, False, results)


def _causes(err: BaseException) -> list[BaseException]:
    """The exception and what caused it (huggingface_hub wraps upload errors in RuntimeError)."""
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _is_remote_failure(err: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError

    return isinstance(err, HfHubHTTPError | OSError | ValueError) or type(err).__module__.startswith("httpx")


def _parse_with_client(build: VariantBuild) -> None:
    """huggingface_hub's own structural parse (model-index, eval results) of the card."""
    from huggingface_hub import ModelCard

    try:
        ModelCard(build.card)
    except ValueError as e:
        raise CardError(f"huggingface_hub cannot parse the card ({' '.join(str(e).split())})",
                        where=str(build.folder / CARD)) from e


def _validate_remote(publisher: Publisher, build: VariantBuild) -> None:
    import warnings

    def validate() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            publisher.api._validate_yaml(build.card, repo_type="model")

    try:
        publisher._call(validate, f"validating the card of {build.repo_id}")
    except ValueError as e:
        reasons = " ".join(str(e).replace("Invalid metadata in README.md.", "").split())
        raise CardError(f"the Hub rejects the card: {reasons}", where=str(build.folder / CARD)) from None
