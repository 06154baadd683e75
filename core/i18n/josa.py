"""Korean particles (조사) agreeing with the word before them: 은/는, 이/가, 을/를, 으로/로 …

A catalog writes ``'{key}'{key:이/가}``: the particle is chosen from how the value's last
character is read aloud — a Hangul syllable by its final consonant (받침), a digit by its
Korean name (1 일, 3 삼, 6 육, 7 칠, 8 팔, 0 영 end in a consonant), a lone Latin letter by its
English name (l, m, n, r end in a consonant), an English word by how loanwords are written
(title 타이틀, item 아이템, chat 챗 end in a consonant; mode 모드, key 키 do not). Anything
else gets both forms, "이(가)".
"""

from __future__ import annotations

__all__ = ["PAIRS", "particle"]

PAIRS: dict[str, tuple[str, str]] = {
    "은/는": ("은", "는"),
    "이/가": ("이", "가"),
    "을/를": ("을", "를"),
    "과/와": ("과", "와"),
    "으로/로": ("으로", "로"),
    "이에요/예요": ("이에요", "예요"),
}

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_RIEUL = 8  # ㄹ as a final consonant: takes 로, not 으로
# 영 일 삼 육 칠 팔: the digits whose Korean names end in a consonant
_DIGIT_FINAL = {"0": 21, "1": _RIEUL, "3": 16, "6": 1, "7": _RIEUL, "8": _RIEUL}
_LETTER_FINAL = {"l": _RIEUL, "m": 16, "n": 4, "r": _RIEUL}  # 엘 엠 엔 알
_SKIP = " \t\n'\"’”」』)]}>.,!?…·"


def _final(word: str) -> int | None:
    """The final consonant index (0 = none) of how ``word`` ends, or None if unknown."""
    text = word.rstrip(_SKIP)
    if not text:
        return None
    last = text[-1]
    code = ord(last)
    if _HANGUL_FIRST <= code <= _HANGUL_LAST:
        return (code - _HANGUL_FIRST) % 28
    if last.isdigit() and last.isascii():
        return _DIGIT_FINAL.get(last, 0)
    if last.isascii() and last.isalpha():
        letters = ""
        for char in reversed(text.lower()):
            if not (char.isascii() and char.isalpha()):
                break
            letters = char + letters
        return _LETTER_FINAL.get(last.lower(), 0) if len(letters) == 1 else _word_final(letters)
    return None


def _word_final(word: str) -> int:
    """The 받침 an English word takes in Korean writing (a heuristic for keys and names)."""
    if word.endswith(("le", "l")):
        return _RIEUL  # 타이틀, 채널
    if word.endswith("m"):
        return 16  # 아이템
    if word.endswith(("n", "ng")):
        return 4  # 옵션, 엔딩
    if word.endswith(("t", "k", "p")) and not word.endswith("ck") and word[-2:-1] in "aeiou":
        return 19  # 챗, 북, 톱 (ㅅ/ㄱ/ㅂ: any final consonant but ㄹ)
    return 0


def particle(word: object, pair: str) -> str:
    """The particle of ``pair`` (e.g. ``"이/가"``) that follows ``word``."""
    with_final, without = PAIRS[pair]
    final = _final(str(word))
    if final is None:
        return f"{with_final}({without})" if pair != "으로/로" else "(으)로"
    if pair == "으로/로":
        return with_final if final not in (0, _RIEUL) else without
    return with_final if final else without
