"""A fake Decidim GraphQL API on port 0: a subset of Decidim's published schema, executed for real.

The SDL below mirrors decidim/decidim (develop toward 0.32): ``ProposalType`` (proposal_type.rb),
the ``Proposals`` component and its connection (proposals_type.rb), ``ProposalsMutation`` /
``ProposalMutation`` with ``createProposal`` (create_proposal_type.rb + proposal_attributes.rb),
``vote`` and ``withdraw`` (vote_/withdraw_proposal_type.rb), and decidim-comments'
``commentable(...) { addComment }`` (mutation_extensions.rb, commentable_mutation_type.rb).
graphql-core validates every query the adapter sends against it, so a misspelt field fails here.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from graphql import GraphQLError, build_schema, graphql

__all__ = ["FakeDecidim"]

SDL = """
scalar DateTime

type TranslatedField {
  translation(locale: String!): String
}

interface Author { nickname: String!  name: String! }
type User implements Author { nickname: String!  name: String! }

type Comment {
  id: ID!
  body: String!
  createdAt: String!
  author: Author!
}

type Proposal {
  id: ID!
  title: TranslatedField
  body: TranslatedField
  state: String
  answer: TranslatedField
  answeredAt: DateTime
  publishedAt: DateTime
  createdAt: DateTime
  updatedAt: DateTime
  withdrawn: Boolean
  withdrawnAt: DateTime
  voteCount: Int
  reference: String
  comments(orderBy: String, singleCommentId: String): [Comment!]!
}

type PageInfo {
  hasNextPage: Boolean!  hasPreviousPage: Boolean!  startCursor: String  endCursor: String
}
type ProposalEdge { node: Proposal  cursor: String! }
type ProposalConnection { edges: [ProposalEdge]  nodes: [Proposal]  pageInfo: PageInfo! }

input ProposalSort { id: String  voteCount: String  publishedAt: String }
input ProposalFilter { publishedBefore: String  publishedSince: String }

interface ComponentInterface { id: ID! }

type Proposals implements ComponentInterface {
  id: ID!
  proposals(first: Int, after: String, last: Int, before: String,
            order: ProposalSort, filter: ProposalFilter): ProposalConnection
  proposal(id: ID!): Proposal
}

type Query { component(id: ID!): ComponentInterface }

input ProposalAttributes {
  title: String!
  body: String!
  address: String
  latitude: Float
  longitude: Float
  taxonomies: [ID]
}
input CreateProposalInput {
  clientMutationId: String
  attributes: ProposalAttributes!
  locale: String
  toggleTranslations: Boolean
}
input VoteProposalInput { clientMutationId: String }
input UnvoteProposalInput { clientMutationId: String }
input WithdrawProposalInput { clientMutationId: String }

type ProposalMutation {
  id: ID!
  vote(input: VoteProposalInput!): Proposal
  unvote(input: UnvoteProposalInput!): Proposal
  withdraw(input: WithdrawProposalInput!): Proposal
}

type ProposalsMutation {
  id: ID!
  proposal(id: ID!): ProposalMutation
  createProposal(input: CreateProposalInput!): Proposal
}

union ComponentMutation = ProposalsMutation

type CommentableMutation {
  id: ID!
  addComment(body: String!, alignment: Int, userGroupId: ID): Comment
}

type Mutation {
  component(id: ID!): ComponentMutation
  commentable(id: String!, type: String!, locale: String!,
              toggleTranslations: Boolean!): CommentableMutation!
}
"""


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class FakeDecidim:
    """One proposals component (``component_id``); the API user is ``gongnon-bot``."""

    def __init__(self, *, token: str = "decidim-token", component_id: str = "29") -> None:
        self.token = token
        self.component_id = component_id
        self.schema = build_schema(SDL)
        self.proposals: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.votes: dict[int, set[str]] = {}
        self.operations: list[str] = []
        self.invalid: list[str] = []  # queries the schema refused (must stay empty)
        self.faults: list[str] = []
        self.clock = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
        self._next_comment = 500
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- server ------------------------------------------------------------------
    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/api", self._api)
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

    async def _api(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given, f"Bearer {self.token}"):
            return web.json_response({"data": None})  # Decidim's answer when not authorized
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
        return web.json_response(result.formatted)

    # --- data shaped as Decidim's types ---------------------------------------------------
    def _proposal(self, pid: int) -> dict[str, Any]:
        p = self.proposals[pid]
        return {
            "__typename": "Proposal",
            "id": str(pid),
            "title": {"translation": lambda _info, locale: p["title"]},
            "body": {"translation": lambda _info, locale: p["body"]},
            "state": p["state"],
            "answer": {"translation": lambda _info, locale: p["answer"]} if p["answer"] else None,
            "answeredAt": _iso(p["answered_at"]) if p["answered_at"] else None,
            "publishedAt": _iso(p["created_at"]),
            "createdAt": _iso(p["created_at"]),
            "updatedAt": _iso(p["updated_at"]),
            "withdrawn": p["withdrawn_at"] is not None,
            "withdrawnAt": _iso(p["withdrawn_at"]) if p["withdrawn_at"] else None,
            "voteCount": len(self.votes.get(pid, ())),
            "reference": f"DEC-PROP-{pid}",
            "comments": lambda _info, **_: [
                {"__typename": "Comment", "id": str(c["id"]), "body": c["body"],
                 "createdAt": _iso(c["created_at"]),
                 "author": {"__typename": "User", "nickname": c["author"], "name": c["author"]}}
                for c in self.comments.get(pid, [])
            ],
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
            "__typename": "Proposals",
            "id": id,
            "proposals": self._connection,
            "proposal": lambda _i, id: self._proposal(int(id)) if int(id) in self.proposals
            else None,
        }

    def _create(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        attrs = input["attributes"]
        problems = []
        if not 15 <= len(attrs["title"]) <= 150:
            problems.append("title")
        if len(attrs["body"]) < 15:
            problems.append("body")
        if problems:
            raise _error(f"invalid: {', '.join(problems)}", "ATTRIBUTE_VALIDATION_ERROR")
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

        def vote(_i: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
            voters = self.votes.setdefault(pid, set())
            if "gongnon-bot" in voters:
                raise _error("You have already supported this proposal.", "VALIDATION_ERROR")
            voters.add("gongnon-bot")
            return self._proposal(pid)

        def withdraw(_i: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
            self.proposals[pid]["withdrawn_at"] = self.tick(1)
            self.proposals[pid]["updated_at"] = self.clock
            return self._proposal(pid)

        return {"id": id, "vote": vote, "unvote": vote, "withdraw": withdraw}

    def _component_mutation(self, _info: Any, id: str) -> dict[str, Any] | None:  # noqa: A002
        if id != self.component_id:
            return None
        return {"__typename": "ProposalsMutation", "id": id,
                "proposal": self._proposal_mutation, "createProposal": self._create}

    def _commentable(self, _info: Any, id: str, type: str, locale: str,  # noqa: A002
                     toggleTranslations: bool) -> dict[str, Any]:  # noqa: N803
        pid = int(id)
        if type != "Decidim::Proposals::Proposal" or pid not in self.proposals:
            raise _error("not found", "NOT_FOUND")

        def add(_i: Any, body: str, alignment: int = 0, **_: Any) -> dict[str, Any]:
            return self.add_comment(pid, body, author="gongnon-bot")

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
    def answer(self, pid: int, state: str, text: str) -> None:
        p = self.proposals[pid]
        p["state"], p["answer"] = state, text
        p["answered_at"] = p["updated_at"] = self.tick()

    def add_comment(self, pid: int, body: str, *, author: str = "citizen-9") -> dict[str, Any]:
        self._next_comment += 1
        comment = {"id": self._next_comment, "body": body, "author": author,
                   "created_at": self.tick(1)}
        self.comments.setdefault(pid, []).append(comment)
        return {"__typename": "Comment", "id": str(comment["id"]), "body": body,
                "createdAt": _iso(comment["created_at"]),
                "author": {"__typename": "User", "nickname": author, "name": author}}
