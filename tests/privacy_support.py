"""Scan every text column of every table for given strings (masking and erasure tests)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import JSON, LargeBinary, String, Text, select

from core.adapters.schema import metadata
from core.bootstrap import Core

__all__ = ["text_hits"]


def _as_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def text_hits(core: Core, needles: list[str]) -> list[str]:
    """``table.column: needle`` for every stored value that contains one of ``needles``."""
    hits: list[str] = []
    async with core.db.read() as session:
        for table in metadata.sorted_tables:
            columns = [
                col for col in table.columns
                if isinstance(col.type, String | Text | JSON | LargeBinary)
            ]
            if not columns:
                continue
            rows = (await session.execute(select(*columns))).all()
            for row in rows:
                for col, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    text = _as_text(value)
                    hits += [f"{table.name}.{col.name}: {n}" for n in needles if n in text]
    return hits
