"""The ``decidim`` forum backend: Decidim's GraphQL API (``POST {forum_url}``, bearer token).

Relied on (decidim/decidim, develop toward 0.32, write API merged Dec 2025 – Jan 2026):
``decidim-proposals/lib/decidim/api/mutations/create_proposal_type.rb`` and
``proposal_attributes.rb`` (PR #15790: ``ProposalsMutation.createProposal(input: {attributes})``),
``vote_proposal_type.rb`` (PR #15791: ``ProposalMutation.vote``), ``withdraw_proposal_type.rb``
(PR #15793), ``proposal_type.rb`` (``state``, ``answer``, ``answeredAt``, ``withdrawn``, dates),
``proposals_type.rb`` (the ``proposals`` connection), and ``decidim-comments``'
``mutation_extensions.rb`` / ``commentable_mutation_type.rb`` (``commentable { addComment }``).

Decidim has no Idempotency-Key: a creation is found again by the ``[tracking]`` marker we append
to its title, and a repeated vote's validation error counts as done. Decidim has no change feed:
reconciliation reads the component's proposals and keeps the newest ``updatedAt`` as its cursor.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from core.adapters.forum_http import ForumSession
from core.domain.model import ProposalStatus
from core.ports import (
    ForumChange,
    ForumError,
    ForumProposal,
    ForumStatus,
    ForumUnavailable,
)

__all__ = ["DECIDIM_STATES", "DecidimForum", "map_state"]

log = logging.getLogger(__name__)

PAGE = 50
TITLE_MAX = 150
COMMENTABLE_TYPE = "Decidim::Proposals::Proposal"
_S = ProposalStatus

# Decidim's default states (evaluating, accepted, rejected) and withdrawal, then common custom ones.
DECIDIM_STATES: dict[str, ProposalStatus | None] = {
    "not_answered": None,
    "evaluating": _S.UNDER_REVIEW,
    "accepted": _S.ACCEPTED,
    "rejected": _S.NOT_ACCEPTED,
    "withdrawn": _S.WITHDRAWN,
}
_CUSTOM_HINTS: tuple[tuple[str, ProposalStatus], ...] = (
    ("partial", _S.PARTLY_ACCEPTED),
    ("implement", _S.IMPLEMENTED),
    ("complet", _S.IMPLEMENTED),
    ("forward", _S.FORWARDED),
    ("transfer", _S.FORWARDED),
    ("review", _S.UNDER_REVIEW),
    ("evaluat", _S.UNDER_REVIEW),
)

CREATE = """
mutation CreateProposal($componentId: ID!, $attributes: ProposalAttributes!, $locale: String) {
  component(id: $componentId) {
    ... on ProposalsMutation {
      createProposal(input: {attributes: $attributes, locale: $locale}) { id }
    }
  }
}"""

FIND_RECENT = """
query RecentProposals($componentId: ID!, $locale: String!) {
  component(id: $componentId) {
    ... on Proposals {
      proposals(first: 50, order: {id: "DESC"}) {
        nodes { id title { translation(locale: $locale) } }
      }
    }
  }
}"""

VOTE = """
mutation VoteProposal($componentId: ID!, $proposalId: ID!) {
  component(id: $componentId) {
    ... on ProposalsMutation {
      proposal(id: $proposalId) { vote(input: {}) { id voteCount } }
    }
  }
}"""

WITHDRAW = """
mutation WithdrawProposal($componentId: ID!, $proposalId: ID!) {
  component(id: $componentId) {
    ... on ProposalsMutation {
      proposal(id: $proposalId) { withdraw(input: {}) { id withdrawn } }
    }
  }
}"""

COMMENT = """
mutation AddComment($id: String!, $type: String!, $locale: String!, $body: String!) {
  commentable(id: $id, type: $type, locale: $locale, toggleTranslations: false) {
    addComment(body: $body, alignment: 0) { id }
  }
}"""

_PROPOSAL_FIELDS = """
  id state withdrawn withdrawnAt answeredAt updatedAt publishedAt
  title { translation(locale: $locale) }
  answer { translation(locale: $locale) }
"""

ONE = (
    "query OneProposal($componentId: ID!, $proposalId: ID!, $locale: String!) {\n"
    "  component(id: $componentId) {\n    ... on Proposals {\n"
    "      proposal(id: $proposalId) {" + _PROPOSAL_FIELDS + "}\n    }\n  }\n}"
)

CHANGES = (
    "query ProposalChanges($componentId: ID!, $after: String, $locale: String!) {\n"
    "  component(id: $componentId) {\n    ... on Proposals {\n"
    "      proposals(first: 50, after: $after, order: {id: \"ASC\"}) {\n"
    "        pageInfo { hasNextPage endCursor }\n"
    "        nodes {" + _PROPOSAL_FIELDS
    + "          comments { id body createdAt author { nickname } }\n"
    "        }\n      }\n    }\n  }\n}"
)


def map_state(
    state: str | None, *, withdrawn: bool = False, overrides: Mapping[str, str] | None = None
) -> ProposalStatus | None:
    """Our status for a Decidim state token (None: not answered yet, nothing to tell)."""
    if withdrawn:
        return _S.WITHDRAWN
    token = (state or "").strip().lower()
    if not token:
        return None
    if overrides and token in overrides:
        return ProposalStatus(overrides[token])
    if token in DECIDIM_STATES:
        return DECIDIM_STATES[token]
    for hint, status in _CUSTOM_HINTS:
        if hint in token:
            return status
    log.info("unknown Decidim state %r: treated as under review", token[:40])
    return _S.UNDER_REVIEW


def _when(raw: Any) -> datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(field: Any) -> str:
    if isinstance(field, dict):
        return str(field.get("translation") or "")
    return ""


def _marker(tracking: str) -> str:
    return f"[{tracking}]"


def _titled(title: str, tracking: str) -> str:
    """Decidim wants 15-150 characters; our marker makes it findable and long enough."""
    marker = " " + _marker(tracking)
    return title[: TITLE_MAX - len(marker)] + marker


class DecidimForum:
    name = "decidim"

    def __init__(
        self,
        *,
        api_url: str,
        token: str | None,
        component_id: str,
        timeout: float,
        locale: str = "ko",
        state_overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.api_url = api_url
        self.component_id = component_id
        self.locale = locale
        self.state_overrides = dict(state_overrides or {})
        self._client = ForumSession(token=token, timeout=timeout)

    async def _post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """``data`` of a GraphQL answer; errors become ForumError or ForumUnavailable."""
        try:
            async with self._client().post(
                self.api_url, json={"query": query, "variables": variables}
            ) as resp:
                status, text = resp.status, await resp.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ForumUnavailable(f"decidim: {type(exc).__name__}") from exc
        if status >= 500 or status in (408, 429):
            raise ForumUnavailable(f"decidim: HTTP {status}")
        if status >= 400:
            raise ForumError(f"decidim: HTTP {status}")
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise ForumUnavailable("decidim: answer is not JSON") from exc
        errors = body.get("errors") or []
        if errors:
            codes = [str((e.get("extensions") or {}).get("code", "")) for e in errors]
            message = "; ".join(str(e.get("message", ""))[:120] for e in errors)
            raise _GraphQLError(codes, message)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ForumError("decidim: no data (not authorized?)")
        return data

    @staticmethod
    def _dig(data: dict[str, Any], *path: str) -> Any:
        node: Any = data
        for key in path:
            if not isinstance(node, dict) or node.get(key) is None:
                raise ForumError(f"decidim: answer lacks {'.'.join(path)}")
            node = node[key]
        return node

    # --- writes ------------------------------------------------------------------------
    async def _find(self, tracking: str) -> str | None:
        data = await self._post(
            FIND_RECENT, {"componentId": self.component_id, "locale": self.locale}
        )
        nodes = self._dig(data, "component", "proposals", "nodes")
        for node in nodes:
            if _marker(tracking) in _text(node.get("title")):
                return str(node["id"])
        return None

    async def create_proposal(self, proposal: ForumProposal, *, idempotency_key: str) -> str:
        existing = await self._find(proposal.tracking)  # a retry after a lost answer
        if existing is not None:
            return existing
        attributes = {
            "title": _titled(proposal.title, proposal.tracking),
            "body": proposal.body,
        }
        try:
            data = await self._post(
                CREATE,
                {"componentId": self.component_id, "attributes": attributes,
                 "locale": self.locale},
            )
        except _GraphQLError as exc:
            raise ForumError(f"decidim create: {exc}") from exc
        return str(self._dig(data, "component", "createProposal", "id"))

    async def add_support(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        try:
            await self._post(VOTE, {"componentId": self.component_id, "proposalId": forum_id})
        except _GraphQLError as exc:
            if "VALIDATION_ERROR" in exc.codes:  # already voted by our API user: done
                return
            raise ForumError(f"decidim vote: {exc}") from exc

    async def change_status(
        self,
        forum_id: str,
        *,
        status: str,
        from_status: str,
        reason: str,
        expected_date: str | None,
        idempotency_key: str,
    ) -> int:
        """Decidim answers proposals in its admin panel; its API has no answer mutation for an
        integration (decidim-proposals/lib/decidim/api/ on develop). The change stays in
        Gongnon, and ``gongnon sync status`` says so; the forum's own answers still come in."""
        log.info("decidim: status changes are made in Decidim's admin panel (%s)", forum_id)
        return 0

    async def withdraw(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        try:
            await self._post(WITHDRAW, {"componentId": self.component_id, "proposalId": forum_id})
        except _GraphQLError as exc:
            raise ForumError(f"decidim withdraw: {exc}") from exc

    async def add_feedback(
        self, forum_id: str, *, body: str, author_ref: str, idempotency_key: str
    ) -> str:
        try:
            data = await self._post(
                COMMENT,
                {"id": forum_id, "type": COMMENTABLE_TYPE, "locale": self.locale, "body": body},
            )
        except _GraphQLError as exc:
            raise ForumError(f"decidim comment: {exc}") from exc
        return str(self._dig(data, "commentable", "addComment", "id"))

    # --- reads ---------------------------------------------------------------------------
    def _status_of(self, node: dict[str, Any]) -> ProposalStatus | None:
        return map_state(
            node.get("state"), withdrawn=bool(node.get("withdrawn")),
            overrides=self.state_overrides,
        )

    async def proposal_status(self, forum_id: str) -> ForumStatus:
        data = await self._post(
            ONE, {"componentId": self.component_id, "proposalId": forum_id,
                  "locale": self.locale},
        )
        node = self._dig(data, "component", "proposal")
        status = self._status_of(node) or _S.RECEIVED
        updated = _when(node.get("updatedAt"))
        return ForumStatus(
            forum_id=str(node["id"]),
            tracking=None,
            status=status.value,
            version=int(updated.timestamp()) if updated else 1,
        )

    def _node_changes(self, node: dict[str, Any], since: datetime | None) -> list[ForumChange]:
        forum_id = str(node["id"])
        updated = _when(node.get("updatedAt"))
        out: list[ForumChange] = []
        answer = _text(node.get("answer"))
        if updated is not None and (since is None or updated > since):
            version = int(updated.timestamp())
            status = self._status_of(node)
            if status is not None:
                out.append(ForumChange(
                    kind="status_changed", forum_id=forum_id, tracking=None, version=version,
                    status=status.value, reason=answer, at=updated,
                ))
            answered = node.get("answeredAt")
            if answer and answered:
                out.append(ForumChange(
                    kind="answered", forum_id=forum_id, tracking=None, version=version,
                    body=answer, comment_id=f"decidim:{answered}", at=_when(answered),
                ))
        for comment in node.get("comments") or ():
            created = _when(comment.get("createdAt"))
            if created is None or (since is not None and created <= since):
                continue
            author = (comment.get("author") or {}).get("nickname") or "unknown"
            out.append(ForumChange(
                kind="comment_added", forum_id=forum_id, tracking=None,
                version=int(created.timestamp()), body=str(comment.get("body") or ""),
                comment_id=str(comment["id"]), author_ref=f"decidim:{author}", at=created,
            ))
        return out

    async def changes_since(self, cursor: str | None) -> tuple[Sequence[ForumChange], str | None]:
        since = _when(cursor) if cursor else None
        changes: list[ForumChange] = []
        after: str | None = None
        for _ in range(200):  # pages of 50: up to 10,000 proposals per component
            data = await self._post(
                CHANGES,
                {"componentId": self.component_id, "after": after, "locale": self.locale},
            )
            connection = self._dig(data, "component", "proposals")
            for node in connection.get("nodes") or ():
                changes.extend(self._node_changes(node, since))
            page = connection.get("pageInfo") or {}
            if not page.get("hasNextPage"):
                break
            after = page.get("endCursor")
        if not changes:
            return (), cursor
        newest = max(change.at for change in changes if change.at is not None)
        return changes, newest.isoformat()

    async def close(self) -> None:
        await self._client.close()


class _GraphQLError(ForumError):
    def __init__(self, codes: list[str], message: str) -> None:
        super().__init__(message or ",".join(codes))
        self.codes = codes
