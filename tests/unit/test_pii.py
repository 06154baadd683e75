"""Personal-data detection: the Korean corpus (precision/recall printed), masking, hostile input."""

from __future__ import annotations

from collections import Counter

from core.privacy.pii import find, luhn_ok, mask, rrn_checksum_ok
from tests.unit.pii_corpus import NEGATIVE, POSITIVE


def _score() -> tuple[int, int, int, list[str]]:
    tp = fp = fn = 0
    misses: list[str] = []
    for text, expected in POSITIVE:
        found = Counter(f.kind for f in find(text))
        for kind in set(expected) | set(found):
            hit = min(expected.get(kind, 0), found.get(kind, 0))
            tp += hit
            fp += found.get(kind, 0) - hit
            fn += expected.get(kind, 0) - hit
        if dict(found) != expected:
            misses.append(f"{text!r}: expected {expected}, found {dict(found)}")
    for text in NEGATIVE:
        found = Counter(f.kind for f in find(text))
        fp += sum(found.values())
        if found:
            misses.append(f"{text!r}: expected nothing, found {dict(found)}")
    return tp, fp, fn, misses


def test_corpus_precision_and_recall() -> None:
    assert len(POSITIVE) >= 100 and len(NEGATIVE) >= 100
    tp, fp, fn, misses = _score()
    precision = tp / (tp + fp)
    recall = tp / (tp + fn)
    print(
        f"\nPII corpus: {len(POSITIVE)} positive / {len(NEGATIVE)} negative examples, "
        f"tp={tp} fp={fp} fn={fn}, precision={precision:.4f} recall={recall:.4f}"
    )
    for line in misses:
        print("  miss:", line)
    assert precision >= 0.99, misses
    assert recall >= 0.98, misses


def test_mask_hides_digits_keeps_shape_and_counts() -> None:
    masked, findings = mask("번호 010-1234-5678, 주민번호 850315-1234566 입니다")
    assert masked == "번호 ***-****-****, 주민번호 ******-******* 입니다"
    assert findings == {"phone": 1, "rrn": 1}
    again = mask(masked)
    assert again.text == masked and again.findings == {}


def test_mask_email_and_full_width() -> None:
    masked, findings = mask("메일 hong@example.com 과 ０１０－１２３４－５６７８")
    assert "hong" not in masked and "example" not in masked
    assert "１２３４" not in masked
    assert findings == {"email": 1, "phone": 1}


def test_nothing_to_mask_returns_the_same_text() -> None:
    text = "P-2026-000001 제안을 지지합니다. 2026-01-15"
    assert mask(text) == (text, {})


def test_check_digits() -> None:
    assert rrn_checksum_ok("8503151234566")
    assert not rrn_checksum_ok("8503151234567")
    assert rrn_checksum_ok("8801015123452")  # foreigner rule
    assert luhn_ok("4532123456789014") and not luhn_ok("4532123456789012")


def test_hostile_input_is_linear_enough() -> None:
    # Long runs of digits, separators and '@' must not blow up the regexes.
    for text in ("1-" * 20000, "0" * 50000, "a@" * 20000, "010-" * 10000, "@." * 20000):
        masked, _ = mask(text)
        assert len(masked) == len(text)
