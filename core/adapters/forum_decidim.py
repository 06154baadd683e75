"""The ``decidim`` forum backend: Decidim's GraphQL API (``POST {forum_url}``).

Relied on (decidim/decidim, develop toward 0.32; the type files and commits are listed in
tests/fakes/decidim.py, whose schema is rebuilt from them and validates every document here):
``createProposal(input: {attributes, locale!})`` (PR #15790), ``ProposalMutation.vote`` (#15791),
``withdraw`` (#15793), ``answer`` (admin permission), decidim-comments' ``commentable {
addComment }`` and ``Comment.comments`` (replies), and the machine sign-in ``POST /api/sign_in``
with an API key and secret (a JWT that expires: renewed before it does).

Decidim has no Idempotency-Key: a creation whose answer was lost is found again by its title and
body (no tracking marker in the title: Gongnon keeps the link, the proposal's forum id). Decidim
has no change feed: reconciliation reads the component's proposals and keeps the newest
``updatedAt`` as its cursor. Decidim's HTML (answers, comments) becomes plain text here.

Decidim's API cannot vote as anyone but the API user (no impersonation, no user creation), so a
proposal's chat supporters are one vote there: ``supports_once``/``limitations``, shown by
``gongnon sync status`` with the count Decidim does not see.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt

from core.adapters.forum_http import ForumSession
from core.adapters.html_text import html_to_text
from core.domain.model import ProposalStatus
from core.ports import (
    ForumChange,
    ForumConflict,
    ForumError,
    ForumProposal,
    ForumStatus,
    ForumUnavailable,
    VoteRefused,
)

__all__ = ["DECIDIM_STATES", "DOCUMENTS", "DecidimAuth", "DecidimForum", "map_state"]

log = logging.getLogger(__name__)

PAGE = 50
TITLE_MIN = 15
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
mutation CreateProposal($componentId: ID!, $attributes: ProposalAttributes!, $locale: String!) {
  component(id: $componentId) {
    ... on ProposalsMutation {
      createProposal(input: {attributes: $attributes, locale: $locale,
                             toggleTranslations: false}) { id }
    }
  }
}"""

FIND_RECENT = """
query RecentProposals($componentId: ID!, $locale: String!) {
  component(id: $componentId) {
    ... on Proposals {
      proposals(first: 50, order: {id: "DESC"}) {
        nodes { id title { translation(locale: $locale) } body { translation(locale: $locale) } }
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

ANSWER = """
mutation AnswerProposal($componentId: ID!, $proposalId: ID!,
                        $attributes: AnswerProposalAttributes!) {
  component(id: $componentId) {
    ... on ProposalsMutation {
      proposal(id: $proposalId) {
        answer(input: {attributes: $attributes}) { id state answeredAt updatedAt }
      }
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
  id state withdrawn withdrawnAt answeredAt updatedAt publishedAt voteCount
  title { translation(locale: $locale) }
  answer { translation(locale: $locale) }
"""

ONE = (
    "query OneProposal($componentId: ID!, $proposalId: ID!, $locale: String!) {\n"
    "  component(id: $componentId) {\n    ... on Proposals {\n"
    "      proposal(id: $proposalId) {" + _PROPOSAL_FIELDS + "}\n    }\n  }\n}"
)

# Replies are comments of comments (Comment implements Commentable): read three levels deep.
CHANGES = (
    "query ProposalChanges($componentId: ID!, $after: String, $locale: String!) {\n"
    "  component(id: $componentId) {\n    ... on Proposals {\n"
    "      proposals(first: 50, after: $after, order: {id: \"ASC\"}) {\n"
    "        pageInfo { hasNextPage endCursor }\n"
    "        nodes {" + _PROPOSAL_FIELDS
    + "          comments { ...C comments { ...C comments { ...C } } }\n"
    "        }\n      }\n    }\n  }\n}\n"
    "fragment C on Comment { id body createdAt author { nickname } }"
)

DOCUMENTS = {"CreateProposal": CREATE, "RecentProposals": FIND_RECENT, "VoteProposal": VOTE,
             "WithdrawProposal": WITHDRAW, "AnswerProposal": ANSWER, "AddComment": COMMENT,
             "OneProposal": ONE, "ProposalChanges": CHANGES}

# Our status → Decidim's answer state (answer_proposal_attributes.rb: accepted, rejected,
# evaluating); other statuses have no Decidim state unless GONGNON_FORUM_DECIDIM_STATES maps one.
ANSWER_STATES: dict[ProposalStatus, str] = {
    _S.UNDER_REVIEW: "evaluating",
    _S.ACCEPTED: "accepted",
    _S.NOT_ACCEPTED: "rejected",
}
RENEW_MARGIN = 300.0  # sign in again this many seconds before the token expires
TOKEN_LIFE = 3600.0  # Decidim's default, when a token carries no ``exp``

# Catalog keys (core/i18n/locales/*/sync.yaml) that ``gongnon sync status`` prints.
LIMITATIONS = ("sync.limit.decidim_supports_once",)


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


def _titled(title: str, body: str) -> str:
    """Decidim wants 15-150 characters: a short title is completed with the body's opening
    words (no tracking marker: the link lives in Gongnon's database, not in the title)."""
    title = " ".join(title.split())
    if len(title) < TITLE_MIN:
        title = f"{title} — {' '.join(body.split())}"
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title


def _jwt_expiry(token: str) -> float | None:
    """The token's ``exp`` (we cannot check Decidim's signature, and need not: Decidim does)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


class DecidimAuth:
    """Machine sign-in: ``POST {api}/sign_in`` with the API key and secret answers a JWT
    (decidim-api sessions_controller.rb: ``jwt_token`` in the body and the Authorization header)
    that expires; it is renewed ``RENEW_MARGIN`` seconds before, or at once after a 401."""

    def __init__(self, *, sign_in_url: str, api_key: str, api_secret: str,
                 now: Callable[[], float] = time.time) -> None:
        self.sign_in_url = sign_in_url
        self._key = api_key
        self._secret = api_secret
        self._now = now
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.sign_ins = 0

    def invalidate(self) -> None:
        self._token = None

    async def bearer(self, session: aiohttp.ClientSession) -> str:
        async with self._lock:
            if self._token is None or self._now() >= self._expires - RENEW_MARGIN:
                await self._sign_in(session)
            assert self._token is not None
            return f"Bearer {self._token}"

    async def _sign_in(self, session: aiohttp.ClientSession) -> None:
        body = {"api_user": {"key": self._key, "secret": self._secret}}
        try:
            async with session.post(self.sign_in_url, json=body) as resp:
                status, text = resp.status, await resp.text()
                header = resp.headers.get("Authorization", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ForumUnavailable(f"decidim sign-in: {type(exc).__name__}") from exc
        if status >= 500 or status in (408, 429):
            raise ForumUnavailable(f"decidim sign-in: HTTP {status}")
        if status >= 400:
            raise ForumError(f"decidim sign-in refused: HTTP {status} (API key or secret?)")
        try:
            data = json.loads(text)
        except ValueError:
            data = {}
        token = (data.get("jwt_token") if isinstance(data, dict) else None) or (
            header.removeprefix("Bearer ").strip() or None
        )
        if not isinstance(token, str) or not token:
            raise ForumUnavailable("decidim sign-in: no token in the answer")
        self._token = token
        self._expires = _jwt_expiry(token) or self._now() + TOKEN_LIFE
        self.sign_ins += 1
        log.info("decidim: signed in (token for %.0f s)", self._expires - self._now())


class DecidimForum:
    name = "decidim"
    supports_once = True  # one API user: a proposal's chat supporters are one vote there
    limitations = LIMITATIONS

    def __init__(
        self,
        *,
        api_url: str,
        token: str | None,
        component_id: str,
        timeout: float,
        locale: str = "ko",
        state_overrides: Mapping[str, str] | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url
        self.component_id = component_id
        self.locale = locale
        self.state_overrides = dict(state_overrides or {})
        self._token = token
        self.auth = (
            DecidimAuth(sign_in_url=api_url.rstrip("/") + "/sign_in", api_key=api_key,
                        api_secret=api_secret, now=now)
            if api_key and api_secret else None
        )
        self._client = ForumSession(token=None, timeout=timeout)
        self.answer_states = dict(ANSWER_STATES)
        for token_name, ours in self.state_overrides.items():
            self.answer_states.setdefault(ProposalStatus(ours), token_name)

    async def _headers(self) -> dict[str, str]:
        if self.auth is not None:
            return {"Authorization": await self.auth.bearer(self._client())}
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _post(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """``data`` of a GraphQL answer; errors become ForumError or ForumUnavailable. A 401
        (the token expired early or was revoked) signs in again once."""
        for attempt in (1, 2):
            try:
                async with self._client().post(
                    self.api_url, json={"query": query, "variables": variables},
                    headers=await self._headers(),
                ) as resp:
                    status, text = resp.status, await resp.text()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise ForumUnavailable(f"decidim: {type(exc).__name__}") from exc
            if status == 401 and self.auth is not None and attempt == 1:
                self.auth.invalidate()
                continue
            break
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
            raise _GraphQLError(codes, "; ".join(_error_text(e) for e in errors))
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
    async def _find(self, title: str, body: str) -> str | None:
        """A creation whose answer was lost: the newest proposal with our title and body."""
        data = await self._post(
            FIND_RECENT, {"componentId": self.component_id, "locale": self.locale}
        )
        nodes = self._dig(data, "component", "proposals", "nodes")
        opening = " ".join(body.split())[:40]
        for node in nodes:
            if not isinstance(node, dict):
                continue
            same_title = html_to_text(_text(node.get("title"))) == title
            if same_title and opening in " ".join(html_to_text(_text(node.get("body"))).split()):
                return str(node["id"])
        return None

    async def create_proposal(self, proposal: ForumProposal, *, idempotency_key: str) -> str:
        title = _titled(proposal.title, proposal.body)
        existing = await self._find(title, proposal.body)  # a retry after a lost answer
        if existing is not None:
            return existing
        attributes = {"title": title, "body": proposal.body}
        try:
            data = await self._post(
                CREATE,
                {"componentId": self.component_id, "attributes": attributes,
                 "locale": self.locale},
            )
        except _GraphQLError as exc:
            raise ForumError(f"decidim create: {exc}") from exc
        return str(self._dig(data, "component", "createProposal", "id"))

    async def add_support(
        self, forum_id: str, *, author_ref: str, idempotency_key: str
    ) -> str | None:
        """The API user's vote. Decidim answers ``VALIDATION_ERROR`` both when that user voted
        already and when it refuses the vote (limit reached, voting closed): ``VoteRefused``;
        the relay tells the two apart (``core.sync.relay``)."""
        try:
            await self._post(VOTE, {"componentId": self.component_id, "proposalId": forum_id})
        except _GraphQLError as exc:
            if "VALIDATION_ERROR" in exc.codes:
                raise VoteRefused(f"decidim vote: {exc}") from exc
            raise ForumError(f"decidim vote: {exc}") from exc
        return "voted"

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
        """Decidim's answer mutation (``ProposalMutation.answer``, admin permission): a
        compare-and-set made of a read and the answer. A status Decidim has no state for, or an
        API user without the permission, leaves the change in Gongnon (version 0: told at once).
        """
        target = self.answer_states.get(ProposalStatus(status))
        if target is None:
            log.info("decidim: no Decidim state for %s: the change stays in Gongnon", status)
            return 0
        current = await self.proposal_status(forum_id)
        if current.status == status:  # already there (a retry after a lost answer)
            return current.version
        knowable = from_status == _S.RECEIVED.value or (
            from_status and ProposalStatus(from_status) in self.answer_states
        )
        if knowable and current.status != from_status:
            raise ForumConflict(
                f"decidim: {forum_id} is {current.status}, not {from_status}",
                status=current.status, version=current.version,
            )
        attributes: dict[str, Any] = {"state": target}
        if reason.strip():
            attributes["answerContent"] = {self.locale: reason}
        try:
            data = await self._post(
                ANSWER, {"componentId": self.component_id, "proposalId": forum_id,
                         "attributes": attributes},
            )
        except _GraphQLError as exc:
            if any("NOT_AUTHORIZED" in code for code in exc.codes):
                log.warning("decidim: the API user may not answer proposals: %s stays here",
                            forum_id)
                return 0
            raise ForumError(f"decidim answer: {exc}") from exc
        node = self._dig(data, "component", "proposal", "answer")
        updated = _when(node.get("updatedAt") or node.get("answeredAt"))
        return int(updated.timestamp()) if updated else current.version + 1

    async def withdraw(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        try:
            await self._post(WITHDRAW, {"componentId": self.component_id, "proposalId": forum_id})
        except _GraphQLError as exc:
            raise ForumError(f"decidim withdraw: {exc}") from exc

    async def anonymise(self, forum_id: str, *, author_ref: str, idempotency_key: str) -> None:
        # Decidim holds no reference to our citizens: every proposal, comment and vote is made
        # by the service account (author_ref is never sent), so there is nothing to rewrite.
        return None

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
        """One change per thing that happened: a status with its answer as the reason (plain
        text), an answer alone only when no status goes with it, each new comment or reply."""
        forum_id = str(node["id"])
        updated = _when(node.get("updatedAt"))
        out: list[ForumChange] = []
        answer = html_to_text(_text(node.get("answer")))
        if updated is not None and (since is None or updated > since):
            version = int(updated.timestamp())
            status = self._status_of(node)
            answered = node.get("answeredAt")
            if status is not None:
                out.append(ForumChange(
                    kind="status_changed", forum_id=forum_id, tracking=None, version=version,
                    status=status.value, reason=answer, at=updated,
                ))
            elif answer and answered:
                out.append(ForumChange(
                    kind="answered", forum_id=forum_id, tracking=None, version=version,
                    body=answer, comment_id=f"decidim:{answered}", at=_when(answered),
                ))
        for comment in _flatten(node.get("comments") or ()):
            created = _when(comment.get("createdAt"))
            body = html_to_text(str(comment.get("body") or ""))
            if created is None or not body or (since is not None and created <= since):
                continue
            author = (comment.get("author") or {}).get("nickname") or "unknown"
            out.append(ForumChange(
                kind="comment_added", forum_id=forum_id, tracking=None,
                version=int(created.timestamp()), body=body,
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
                if isinstance(node, dict):
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


def _flatten(comments: Any, depth: int = 0) -> list[dict[str, Any]]:
    """Comments and their replies (``Comment.comments``), parents first."""
    out: list[dict[str, Any]] = []
    for comment in comments or ():
        if isinstance(comment, dict):
            out.append(comment)
            if depth < 5:
                out.extend(_flatten(comment.get("comments"), depth + 1))
    return out


def _error_text(error: Any) -> str:
    """A GraphQL error's message; Decidim's ATTRIBUTE_VALIDATION_ERROR carries a list of
    ``{path, message}`` (attribute_validation_error.rb ``to_h``)."""
    if not isinstance(error, dict):
        return str(error)[:200]
    message = error.get("message")
    if isinstance(message, list):
        parts = []
        for item in message:
            if isinstance(item, dict):
                path = item.get("path") or []
                field = str(path[-1]) if isinstance(path, list) and path else ""
                parts.append(f"{field}: {item.get('message', '')}" if field
                             else str(item.get("message", "")))
            else:
                parts.append(str(item))
        return ", ".join(parts)[:300]
    return str(message or "")[:200]


class _GraphQLError(ForumError):
    def __init__(self, codes: list[str], message: str) -> None:
        super().__init__(message or ",".join(codes))
        self.codes = codes
