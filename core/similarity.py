"""Similar proposals: one Korean-aware search for intake ("비슷한 제안"), lookup and officials.

Two stages. A database index finds candidates cheaply (``TextIndex``: SQLite FTS5 with the
trigram tokenizer, PostgreSQL ``pg_trgm``; see ``core/adapters/search.py``). Then
``SimilarProposals`` scores the candidates here, the same way on both databases, on
character bigrams of a normalised text: spaces, "·" and punctuation removed, so "횡단 보도"
and "횡단보도" meet, and two-syllable Korean words ("복지", "도로") still count, which a
trigram alone cannot see. Bigrams of polite endings ("주세요", "합니다") are ignored: every
proposal has them.

The labelled pairs in ``tests/unit/similarity_pairs.yaml`` measure precision@3 and
recall@3 (``tests/unit/test_similarity.py`` prints them).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from core.domain.model import ProposalSummary

__all__ = [
    "SimilarMatch",
    "SimilarProposals",
    "TextIndex",
    "bigrams",
    "normalise",
    "query_trigrams",
]

# Keep Hangul syllables and jamo, Latin letters and digits; drop spaces, "·" and the rest.
_DROP = re.compile(r"[^0-9a-z\uac00-\ud7a3\u3131-\u318e]+")

# Endings and filler every proposal shares ("…해 주세요", "…했으면 좋겠습니다", "제안합니다").
_STOP_BIGRAMS = frozenset(
    {
        "주세",
        "세요",
        "해주",
        "합니",
        "니다",
        "습니",
        "입니",
        "됩니",
        "바랍",
        "랍니",
        "좋겠",
        "겠습",
        "으면",
        "했으",
        "하면",
        "있습",
        "없습",
        "드립",
        "립니",
        "부탁",
        "탁드",
        "요청",
        "청합",
        "제안",
        "안합",
        "에서",
        "으로",
        "하는",
        "하고",
        "해서",
        "에게",
        "너무",
        "많이",
        "정말",
        "있어",
        "어요",
        "해요",
        "같아",
        "아요",
        "는데",
        "니까",
        "도록",
        "하여",
        "되어",
        "되고",
        "합시",
        "시다",
        "했습",
        "었습",
        "였습",
        "늘려",
        "려주",
        "만들",
        "들어",
        "어주",
        "넓혀",
        "혀주",
        "아주",
        "놓아",
        "달아",
        "해야",
        "어야",
        "ㅠㅠ",
        "ㅜㅜ",
    }
)

TITLE_WEIGHT = 0.6  # the title says what a proposal is about; the body adds evidence


def normalise(text: str) -> str:
    """Lower case, compatibility forms folded, everything but letters and digits removed."""
    return _DROP.sub("", unicodedata.normalize("NFKC", text).casefold())


def bigrams(text: str) -> frozenset[str]:
    """The character bigrams of ``normalise(text)``, without the shared polite endings."""
    norm = normalise(text)
    return frozenset(norm[i : i + 2] for i in range(len(norm) - 1)) - _STOP_BIGRAMS


def query_trigrams(text: str, *, limit: int = 64) -> list[str]:
    """Distinct trigrams of the normalised text, in order, for the candidate index."""
    norm = normalise(text)
    seen: dict[str, None] = {}
    for i in range(len(norm) - 2):
        gram = norm[i : i + 3]
        if gram[:2] in _STOP_BIGRAMS and gram[1:] in _STOP_BIGRAMS:
            continue
        seen.setdefault(gram, None)
        if len(seen) >= limit:
            break
    return list(seen)


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def _cosine(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def score(title: str, body: str, other_title: str, other_body: str) -> float:
    """How alike two proposals read, from 0 (nothing shared) to 1 (the same text)."""
    t1, t2 = bigrams(title), bigrams(other_title)
    a1, a2 = t1 | bigrams(body), t2 | bigrams(other_body)
    return TITLE_WEIGHT * _dice(t1, t2) + (1 - TITLE_WEIGHT) * _cosine(a1, a2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """What the index hands back: enough to score and to show."""

    summary: ProposalSummary
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SimilarMatch:
    summary: ProposalSummary
    score: float


class TextIndex(Protocol):
    """The database side: proposals that share trigrams with a text (a rough first cut)."""

    async def candidates(
        self, trigrams: Sequence[str], *, limit: int, exclude_statuses: Iterable[str]
    ) -> list[Candidate]: ...


class SimilarProposals:
    """``find`` for a draft (title + body); ``search`` for a few typed words."""

    __slots__ = ("candidates", "index", "relative", "threshold")

    def __init__(
        self,
        *,
        index: TextIndex,
        threshold: float = 0.25,
        relative: float = 0.6,
        candidates: int = 50,
    ) -> None:
        # threshold: the least score shown; relative: and at least this share of the best
        # one (a clear match hides weaker look-alikes). Chosen on the labelled pairs.
        self.index = index
        self.threshold = threshold
        self.relative = relative
        self.candidates = candidates

    async def find(
        self,
        title: str,
        body: str = "",
        *,
        limit: int = 3,
        exclude: Iterable[str] = (),
        exclude_statuses: Iterable[str] = ("withdrawn",),
    ) -> list[SimilarMatch]:
        """Up to ``limit`` existing proposals that read like this one, best first."""
        grams = query_trigrams(title + " " + body)
        if not grams:
            return []
        skip = set(exclude)
        found = await self.index.candidates(
            grams, limit=self.candidates, exclude_statuses=tuple(exclude_statuses)
        )
        scored = [
            SimilarMatch(summary=c.summary, score=score(title, body, c.summary.title, c.body))
            for c in found
            if c.summary.tracking not in skip
        ]
        best = max((m.score for m in scored), default=0.0)
        floor = max(self.threshold, self.relative * best)
        scored = [m for m in scored if m.score >= floor]
        scored.sort(key=lambda m: (-m.score, m.summary.tracking))
        return scored[:limit]

    async def search(self, words: str, *, limit: int = 5) -> list[ProposalSummary]:
        """Proposals whose title or body contain these words (lookup): ranked by likeness."""
        grams = query_trigrams(words)
        if not grams:
            return []
        found = await self.index.candidates(grams, limit=self.candidates, exclude_statuses=())
        query = bigrams(words)
        ranked = sorted(
            found,
            key=lambda c: (
                -_containment(query, bigrams(c.summary.title) | bigrams(c.body)),
                c.summary.tracking,
            ),
        )
        return [c.summary for c in ranked if _containment(query, _all(c)) >= 0.5][:limit]


def _all(c: Candidate) -> frozenset[str]:
    return bigrams(c.summary.title) | bigrams(c.body)


def _containment(query: frozenset[str], doc: frozenset[str]) -> float:
    return len(query & doc) / len(query) if query else 0.0
