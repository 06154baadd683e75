"""A fake Decidim on port 0: machine sign-in (JWT) and the GraphQL API, executed for real.

The SDL is rebuilt field by field from Decidim's own Ruby type files (decidim/decidim, develop
toward 0.32; graphql-ruby rules applied: ``null: false`` → ``!``, ``required: true`` → ``!``,
list items non-null unless ``null: true``, a ``RelayClassicMutation`` (``BaseMutation``) takes one
``input: <Name>Input!`` with ``clientMutationId`` and returns the type it declares):

- ``decidim-api/lib/decidim/api/mutation_type.rb`` @1461a8c8: ``Mutation.component(id: ID!):
  ComponentMutation!`` (``null: false``); ``component_mutation_type.rb`` @10caa5d1: the union of
  ``ProposalsMutation`` only.
- ``decidim-proposals/lib/decidim/api/mutations/proposals_mutation_type.rb`` @a2848c3a (a
  ``BaseObject``: no ``id`` field) with ``createProposal`` (PR #15790);
  ``create_proposal_type.rb`` @1d8993bc: ``attributes!``, ``locale: String!``,
  ``toggleTranslations = false``; ``proposal_attributes.rb`` @2e62cea3 (``taxonomies: [ID!]``).
- ``proposal_mutation_type.rb`` @da55234b (``answer``, no ``id``), with ``vote``/``unvote``
  (PR #15791, ``vote_proposal_type.rb`` @6a78aac7: refusals and vote limits are one
  ``VALIDATION_ERROR``) and ``withdraw`` (PR #15793, ``withdraw_proposal_type.rb`` @88031c8e);
  ``answer_proposal_type.rb`` @6a575b5c (graphql_name ``Answer``, admin permission) and
  ``answer_proposal_attributes.rb`` @1c453358 (``answerContent: JSON``, ``state: String``).
- ``proposal_type.rb`` @c1aa0858 (fields, ``voteCount`` nullable, ``url: String!``),
  ``proposals_type.rb`` @9c9b5f51 (connection + ``proposal(id:)``).
- decidim-comments: ``mutation_extensions.rb`` (``commentable(id: String!, type: String!,
  locale: String!, toggleTranslations: Boolean!): CommentableMutation!``),
  ``commentable_mutation_type.rb`` @85ad1854 (``addComment(alignment: Int = 0, body: String!)``:
  no ``userGroupId`` since user groups left), ``comment_type.rb`` @826fee68 (a ``Commentable``
  with ``TimestampsInterface``: replies are ``Comment.comments``), ``commentable_interface.rb``
  @034c3caf (``comments(orderBy, singleCommentId): [Comment!]!``).
- ``decidim-api/app/controllers/decidim/api/sessions_controller.rb`` @163324a8: ``POST
  /api/sign_in`` with ``api_user[key]``/``api_user[secret]`` answers ``jwt_token`` (and the
  ``Authorization`` header); a wrong secret is 401. Tokens expire (60 minutes by default).

graphql-core validates every query the adapter sends against this schema (``invalid`` must stay
empty); tests/unit/test_sync_decidim.py also validates the adapter's documents directly.
"""

from __future__ import annotations

import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from aiohttp import web
from graphql import GraphQLError, GraphQLScalarType, build_schema, graphql

__all__ = ["SDL", "FakeDecidim", "schema"]

SDL = """
scalar DateTime
scalar JSON

type TranslatedField {
  locales: [String]
  translation(locale: String!): String
}

interface Author {
  avatarUrl: String!
  badge: String!
  deleted: Boolean!
  id: ID!
  name: String!
  nickname: String!
  profilePath: String!
}
type User implements Author {
  avatarUrl: String!
  badge: String!
  deleted: Boolean!
  id: ID!
  name: String!
  nickname: String!
  profilePath: String!
}

interface Commentable {
  id: ID!
  type: String!
  acceptsNewComments: Boolean!
  commentsHaveAlignment: Boolean!
  commentsHaveVotes: Boolean!
  comments(orderBy: String, singleCommentId: String): [Comment!]!
  totalCommentsCount: Int!
  hasComments: Boolean!
  userAllowedToComment: Boolean!
}

type Comment implements Commentable {
  id: ID!
  type: String!
  acceptsNewComments: Boolean!
  commentsHaveAlignment: Boolean!
  commentsHaveVotes: Boolean!
  comments(orderBy: String, singleCommentId: String): [Comment!]!
  totalCommentsCount: Int!
  hasComments: Boolean!
  userAllowedToComment: Boolean!
  createdAt: DateTime
  updatedAt: DateTime
  alignment: Int
  alreadyReported: Boolean!
  author: Author!
  body: String!
  downVoted: Boolean!
  downVotes: Int!
  formattedBody: String!
  formattedCreatedAt: String!
  sgid: String!
  upVoted: Boolean!
  upVotes: Int!
  url: String!
}

type Proposal implements Commentable {
  id: ID!
  type: String!
  acceptsNewComments: Boolean!
  commentsHaveAlignment: Boolean!
  commentsHaveVotes: Boolean!
  comments(orderBy: String, singleCommentId: String): [Comment!]!
  totalCommentsCount: Int!
  hasComments: Boolean!
  userAllowedToComment: Boolean!
  createdAt: DateTime
  updatedAt: DateTime
  address: String
  answer: TranslatedField
  answeredAt: DateTime
  body: TranslatedField
  official: Boolean
  publishedAt: DateTime
  reference: String
  state: String
  title: TranslatedField
  voteCount: Int
  withdrawn: Boolean
  withdrawnAt: DateTime
  url: String!
}

type PageInfo {
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
  endCursor: String
}
type ProposalEdge { node: Proposal  cursor: String! }
type ProposalConnection { edges: [ProposalEdge]  nodes: [Proposal]  pageInfo: PageInfo! }

input ProposalInputSort { id: String  publishedAt: String  voteCount: String  type: String }
input ProposalInputFilter { publishedBefore: String  publishedSince: String  type: String }

interface ComponentInterface { id: ID!  name: TranslatedField!  weight: Int! }

type Proposals implements ComponentInterface {
  id: ID!
  name: TranslatedField!
  weight: Int!
  proposals(first: Int, after: String, last: Int, before: String,
            order: ProposalInputSort, filter: ProposalInputFilter): ProposalConnection
  proposal(id: ID!): Proposal
}

type Query { component(id: ID!): ComponentInterface }

input ProposalAttributes {
  address: String
  body: String!
  latitude: Float
  longitude: Float
  taxonomies: [ID!]
  title: String!
}
input CreateProposalInput {
  clientMutationId: String
  attributes: ProposalAttributes!
  locale: String!
  toggleTranslations: Boolean = false
}
input AnswerProposalAttributes {
  answerContent: JSON
  cost: Float
  costReport: JSON
  executionPeriod: JSON
  state: String
}
input AnswerInput { clientMutationId: String  attributes: AnswerProposalAttributes! }
input VoteProposalInput { clientMutationId: String }
input UnvoteProposalInput { clientMutationId: String }
input WithdrawProposalInput { clientMutationId: String }

type ProposalMutation {
  answer(input: AnswerInput!): Proposal
  unvote(input: UnvoteProposalInput!): Proposal
  vote(input: VoteProposalInput!): Proposal
  withdraw(input: WithdrawProposalInput!): Proposal
}

type ProposalsMutation {
  createProposal(input: CreateProposalInput!): Proposal
  proposal(id: ID!): ProposalMutation
}

union ComponentMutation = ProposalsMutation

type CommentableMutation {
  addComment(alignment: Int = 0, body: String!): Comment
  id: ID!
}

type Mutation {
  component(id: ID!): ComponentMutation!
  commentable(id: String!, type: String!, locale: String!,
              toggleTranslations: Boolean!): CommentableMutation!
}
"""

JWT_SECRET = "fake-decidim-jwt-secret-not-for-production"


def schema() -> Any:
    """The schema with its scalars made to pass values through (JSON, DateTime as strings)."""
    built = build_schema(SDL)
    for name in ("JSON", "DateTime"):
        scalar = built.type_map[name]
        assert isinstance(scalar, GraphQLScalarType)
        scalar.serialize = lambda value: value  # type: ignore[method-assign]
        scalar.parse_value = lambda value: value  # type: ignore[method-assign]
    return built


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class FakeDecidim:
    """One proposals component (``component_id``); API users sign in with key and secret.

    ``token`` (a fixed bearer token) stays accepted for older set-ups. ``token_minutes`` is the
    JWT's life; ``vote_refusals`` holds proposal ids whose votes Decidim refuses (a vote limit,
    voting closed); ``can_answer`` is the API user's admin permission to answer proposals.
    """

    def __init__(self, *, token: str | None = "decidim-token", component_id: str = "29",
                 api_key: str = "gongnon-key", api_secret: str = "gongnon-secret",
                 token_minutes: int = 60) -> None:
        self.token = token
        self.component_id = component_id
        self.api_key = api_key
        self.api_secret = api_secret
        self.token_minutes = token_minutes
        self.schema = schema()
        self.proposals: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.votes: dict[int, set[str]] = {}
        self.vote_refusals: set[int] = set()
        self.can_answer = True
        self.operations: list[str] = []
        self.invalid: list[str] = []  # queries the schema refused (must stay empty)
        self.faults: list[str] = []
        self.sign_ins = 0
        self.expired_seen = 0
        self.clock = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
        self.wall_offset = 0.0  # seconds added to time.time() when checking tokens
        self._next_comment = 500
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- server ------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api", self._api)
        app.router.add_post("/api/sign_in", self._sign_in)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/api"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def tick(self, seconds: int = 60) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    async def _sign_in(self, request: web.Request) -> web.Response:
        body = await request.json()
        user = body.get("api_user") if isinstance(body, dict) else None
        key = str((user or {}).get("key") or "")
        secret = str((user or {}).get("secret") or "")
        if not (hmac.compare_digest(key, self.api_key)
                and hmac.compare_digest(secret, self.api_secret)):
            return web.json_response({"id": None, "name": None, "nickname": None,
                                      "jwt_token": None, "avatar": None}, status=401)
        self.sign_ins += 1
        now = time.time() + self.wall_offset
        token = jwt.encode(
            {"sub": "api-user-1", "scp": "api_user", "iat": int(now),
             "exp": int(now + self.token_minutes * 60), "jti": f"j{self.sign_ins}"},
            JWT_SECRET, algorithm="HS256",
        )
        return web.json_response(
            {"id": 1, "name": "Gongnon", "nickname": "gongnon-api", "jwt_token": token,
             "avatar": None},
            headers={"Authorization": f"Bearer {token}"},
        )

    def _authorized(self, header: str) -> bool:
        if self.token is not None and hmac.compare_digest(header, f"Bearer {self.token}"):
            return True
        if not header.startswith("Bearer "):
            return False
        try:
            claims = jwt.decode(header[7:], JWT_SECRET, algorithms=["HS256"],
                                options={"verify_exp": False})
        except jwt.PyJWTError:
            return False
        if claims["exp"] <= time.time() + self.wall_offset:
            self.expired_seen += 1
            return False
        return True

    async def _api(self, request: web.Request) -> web.Response:
        if not self._authorized(request.headers.get("Authorization", "")):
            return web.json_response({"errors": [{"message": "Unauthorized"}]}, status=401)
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "500":
                return web.json_response({"error": "boom"}, status=500)
        payload = await request.json()
        result = await graphql(
            self.schema,
            payload["query"],
            root_value=self._root(),
            variable_values=payload.get("variables") or {},
        )
        if result.errors and any(not e.path for e in result.errors):  # did not validate
            self.invalid.extend(str(e) for e in result.errors)
            return web.json_response(result.formatted, status=400)
        self.operations.append(payload["query"].split("(")[0].split()[-1])
        formatted = result.formatted
        for error in formatted.get("errors") or ():  # AttributeValidationError#to_h
            extensions = error.get("extensions") or {}
            if extensions.get("code") == "ATTRIBUTE_VALIDATION_ERROR":
                error["message"] = [{"path": ["attributes", "title"], "message": m}
                                    for m in extensions.pop("messages", [])]
        return web.json_response(formatted)

    # --- data shaped as Decidim's types ---------------------------------------------------
    @staticmethod
    def _translated(text: str | None) -> dict[str, Any] | None:
        if text is None:
            return None
        return {"locales": ["ko"], "translation": lambda _info, locale: text}

    def _comment(self, c: dict[str, Any]) -> dict[str, Any]:
        replies = c.setdefault("replies", [])
        author = c["author"]
        return {
            "__typename": "Comment", "id": str(c["id"]), "type": "Decidim::Comments::Comment",
            "acceptsNewComments": True, "commentsHaveAlignment": True,
            "commentsHaveVotes": True, "totalCommentsCount": len(replies),
            "hasComments": bool(replies), "userAllowedToComment": True,
            "comments": lambda _info, **_: [self._comment(r) for r in replies],
            "createdAt": _iso(c["created_at"]), "updatedAt": _iso(c["created_at"]),
            "alignment": 0, "alreadyReported": False, "body": c["body"],
            "formattedBody": f"<p>{c['body']}</p>", "formattedCreatedAt": "now",
            "sgid": f"sgid-{c['id']}", "upVoted": False, "upVotes": 0, "downVoted": False,
            "downVotes": 0, "url": f"https://decidim.example/c/{c['id']}",
            "author": {"__typename": "User", "id": author, "nickname": author, "name": author,
                       "avatarUrl": "", "badge": "", "deleted": False,
                       "profilePath": f"/profiles/{author}"},
        }

    def _proposal(self, pid: int) -> dict[str, Any]:
        p = self.proposals[pid]
        comments = self.comments.get(pid, [])
        return {
            "__typename": "Proposal",
            "id": str(pid), "type": "Decidim::Proposals::Proposal",
            "acceptsNewComments": True, "commentsHaveAlignment": True,
            "commentsHaveVotes": True, "totalCommentsCount": len(comments),
            "hasComments": bool(comments), "userAllowedToComment": True,
            "comments": lambda _info, **_: [self._comment(c) for c in comments],
            "title": self._translated(p["title"]),
            "body": self._translated(p["body"]),
            "state": p["state"],
            "answer": self._translated(p["answer"]),
            "answeredAt": _iso(p["answered_at"]) if p["answered_at"] else None,
            "publishedAt": _iso(p["created_at"]),
            "createdAt": _iso(p["created_at"]),
            "updatedAt": _iso(p["updated_at"]),
            "withdrawn": p["withdrawn_at"] is not None,
            "withdrawnAt": _iso(p["withdrawn_at"]) if p["withdrawn_at"] else None,
            "voteCount": len(self.votes.get(pid, ())),
            "reference": f"DEC-PROP-{pid}", "official": False, "address": None,
            "url": f"https://decidim.example/processes/p/f/{self.component_id}/proposals/{pid}",
        }

    def _connection(self, info: Any, first: int | None = None, after: str | None = None,
                    order: dict[str, str] | None = None, **_: Any) -> dict[str, Any]:
        ids = sorted(self.proposals, reverse=bool(order and order.get("id", "").upper() == "DESC"))
        start = int(after) if after else 0
        size = first or 50
        page = ids[start:start + size]
        end = start + len(page)
        nodes = [self._proposal(pid) for pid in page]
        return {
            "nodes": nodes,
            "edges": [{"node": n, "cursor": str(start + i + 1)} for i, n in enumerate(nodes)],
            "pageInfo": {"hasNextPage": end < len(ids), "hasPreviousPage": start > 0,
                         "startCursor": str(start), "endCursor": str(end)},
        }

    def _component_query(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        if id != self.component_id:
            return None
        return {
            "__typename": "Proposals", "id": id, "weight": 0,
            "name": self._translated("제안"),
            "proposals": self._connection,
            "proposal": lambda _i, id: self._proposal(int(id)) if int(id) in self.proposals
            else None,
        }

    def _create(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        if input["locale"] not in ("ko", "en"):
            raise _error(f"{input['locale']} is not a valid locale", "INVALID_LOCALE")
        attrs = input["attributes"]
        problems = []
        if not 15 <= len(attrs["title"]) <= 150:
            problems.append("Title is too short (minimum is 15 characters)")
        if len(attrs["body"]) < 15:
            problems.append("Body is too short (minimum is 15 characters)")
        if problems:  # Decidim's AttributeValidationError carries a list of messages
            raise GraphQLError(", ".join(problems), extensions={
                "code": "ATTRIBUTE_VALIDATION_ERROR", "messages": problems})
        pid = 100 + len(self.proposals) + 1
        now = self.tick(1)
        self.proposals[pid] = {
            "title": attrs["title"], "body": attrs["body"], "state": None, "answer": None,
            "answered_at": None, "created_at": now, "updated_at": now, "withdrawn_at": None,
        }
        return self._proposal(pid)

    def _proposal_mutation(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        pid = int(id)
        if pid not in self.proposals:
            return None
        voter = "gongnon-api"  # every call is made by the one API user

        def vote(_i: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
            voters = self.votes.setdefault(pid, set())
            if voter in voters or pid in self.vote_refusals:
                raise _error("There was a problem supporting the proposal.", "VALIDATION_ERROR")
            voters.add(voter)
            return self._proposal(pid)

        def unvote(_i: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
            self.votes.setdefault(pid, set()).discard(voter)
            return self._proposal(pid)

        def withdraw(_i: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
            self.proposals[pid]["withdrawn_at"] = self.tick(1)
            self.proposals[pid]["updated_at"] = self.clock
            return self._proposal(pid)

        def answer(_i: Any, input: dict[str, Any]) -> dict[str, Any] | None:  # noqa: A002
            if not self.can_answer:
                raise _error("You are not authorized to perform this action",
                             "MUTATION_NOT_AUTHORIZED")
            attrs = input["attributes"]
            state = attrs.get("state")
            if state is not None and state not in ("accepted", "rejected", "evaluating"):
                raise _error("Internal state is not included in the list", "VALIDATION_ERROR")
            content = attrs.get("answerContent")
            text = content.get("ko") if isinstance(content, dict) else None
            self.answer(pid, state or self.proposals[pid]["state"],
                        text if text is not None else self.proposals[pid]["answer"])
            return self._proposal(pid)

        return {"vote": vote, "unvote": unvote, "withdraw": withdraw, "answer": answer}

    def _component_mutation(self, _info: Any, id: str) -> dict[str, Any]:  # noqa: A002
        if id != self.component_id:
            raise _error("Component not found", "NOT_FOUND")
        return {"__typename": "ProposalsMutation",
                "proposal": self._proposal_mutation, "createProposal": self._create}

    def _commentable(self, _info: Any, id: str, type: str, locale: str,  # noqa: A002
                     toggleTranslations: bool) -> dict[str, Any]:  # noqa: N803
        pid = int(id)
        if type != "Decidim::Proposals::Proposal" or pid not in self.proposals:
            raise _error("not found", "NOT_FOUND")

        def add(_i: Any, body: str, alignment: int = 0) -> dict[str, Any]:
            return self.add_comment(pid, body, author="gongnon-api")

        return {"id": id, "addComment": add}

    def _root(self) -> dict[str, Any]:
        return {
            "component": lambda info, id: (
                self._component_mutation(info, id)
                if info.operation.operation.value == "mutation"
                else self._component_query(info, id)
            ),
            "commentable": self._commentable,
        }

    # --- what officials and other participants do on Decidim ------------------------------
    def answer(self, pid: int, state: str | None, text: str | None) -> None:
        p = self.proposals[pid]
        p["state"], p["answer"] = state, text
        p["answered_at"] = p["updated_at"] = self.tick()

    def add_comment(self, pid: int, body: str, *, author: str = "citizen-9",
                    reply_to: int | None = None) -> dict[str, Any]:
        self._next_comment += 1
        comment = {"id": self._next_comment, "body": body, "author": author,
                   "created_at": self.tick(1), "replies": []}
        if reply_to is None:
            self.comments.setdefault(pid, []).append(comment)
        else:
            stack = list(self.comments.get(pid, []))
            while stack:
                parent = stack.pop()
                if parent["id"] == reply_to:
                    parent["replies"].append(comment)
                    break
                stack.extend(parent["replies"])
            else:
                raise KeyError(reply_to)
        return self._comment(comment)
