"""Turn a text file's bytes into text when nobody said which encoding it is in.

The rule, decided by principle rather than per sample:

1. A byte-order mark says it (UTF-8, UTF-16).
2. Valid UTF-8 is UTF-8.
3. Text that is UTF-8 but for a few bad bytes (its non-ASCII bytes mostly form valid UTF-8
   sequences) is UTF-8, with U+FFFD for the bad bytes, and the caller is warned.
4. Otherwise each candidate decoding is scored for how much it looks like writing: the common
   legacy code pages (Windows-1252 first, as the most used) and charset-normalizer's own picks.
   A decoding is out if it has control characters, private-use or unassigned code points; the
   others lose points for words mixing scripts (Latin with Cyrillic), for impossible letter
   case inside a word (`пРИВЕТ`), for Latin words made only of accented letters (Cyrillic
   read as Windows-1252), for symbols inside words, and for box drawing, presentation forms or
   half-width kana anywhere. The lowest penalty per character wins; ties go to the earlier candidate.
   Short texts are where detectors guess: there is too little to count, but these rules still
   tell `Привет` from `Ïðèâåò`.

Only the first SAMPLE bytes are scored; the whole file is then decoded with the winner.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Callable, Iterator

from .errors import LoadError

SAMPLE = 64 * 1024
# The most used legacy encodings, most used first: Western, Central European and Cyrillic
# Windows code pages, KOI8-R, Greek, Turkish, then Japanese, Korean and Chinese.
LEGACY = ("cp1252", "cp1250", "cp1251", "koi8_r", "cp1253", "cp1254", "shift_jis", "cp949", "gb18030", "big5")

_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "HANGUL", "THAI", "ARMENIAN", "GEORGIAN")
_CJK = ("CJK", "HIRAGANA", "KATAKANA", "IDEOGRAPHIC")
_ODD_BLOCKS = (
    "BOX DRAWINGS",
    "BLOCK",
    "SHADE",
    "HALFWIDTH",
    "ISOLATED FORM",
    "FINAL FORM",
    "INITIAL FORM",
    "MEDIAL FORM",
    "LIGATURE",
)


def decode_bytes(data: bytes, warn: Callable[[str], None] | None = None) -> str:
    """The text of a file's bytes, newlines normalised; LoadError when it is not text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return _normalise(data.decode("utf-16"))
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes)")
    try:
        return _normalise(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        pass
    good, bad = _utf8_sequences(data[: 4 * SAMPLE])
    if good and bad <= good:
        if warn is not None:
            warn(
                f"not valid UTF-8: {bad} bad byte sequence(s) in the first {min(len(data), 4 * SAMPLE)} bytes, "
                "read as UTF-8 with U+FFFD in their place"
            )
        return _normalise(data.decode("utf-8", errors="replace"))
    encoding = best_encoding(data[:SAMPLE])
    if encoding is None:
        raise LoadError("cannot tell its text encoding (binary or corrupt?)")
    try:
        return _normalise(data.decode(encoding))
    except UnicodeDecodeError:
        if warn is not None:
            warn(f"read as {encoding}, which its first {SAMPLE} bytes fit but later bytes do not: those became U+FFFD")
        return _normalise(data.decode(encoding, errors="replace"))


def best_encoding(sample: bytes) -> str | None:
    """The candidate whose decoding of `sample` looks most like writing (see the module doc)."""
    candidates = list(LEGACY)
    try:
        from charset_normalizer import from_bytes

        for match in from_bytes(sample):
            if match.encoding not in candidates and not match.encoding.startswith("utf"):
                candidates.append(match.encoding)
    except Exception:  # the detector is a source of candidates, not a judge
        pass
    best, best_score = None, float("inf")
    for encoding in candidates:
        text = _decode_prefix(sample, encoding)
        if text is None:
            continue
        score = implausibility(text)
        if score < best_score:
            best, best_score = encoding, score
    return best


def implausibility(text: str) -> float:
    """Penalty per character of `text` as writing (0 is clean; inf rules it out)."""
    penalty = 0.0
    for ch in text:
        category = unicodedata.category(ch)
        if (category in ("Cc", "Co", "Cn", "Cs") and ch not in "\t\n\r\f") or ch == "\ufffd":
            return float("inf")
    words = _words(text)
    for word in words:
        letters = [c for c in word if c.isalpha()]
        scripts = {_script(c) for c in letters} - {None}
        if len(scripts) > 1:
            penalty += len(word)
        if any(a.islower() and b.isupper() for a, b in zip(letters, letters[1:])):
            penalty += len(word)
        if scripts == {"LATIN"} and len(letters) >= 3 and all(ord(c) > 0x7F for c in letters):
            penalty += len(word)
        penalty += sum(2 for c in word[1:-1] if unicodedata.category(c).startswith("S"))
    for ch in text:
        if ord(ch) > 0x7F and any(part in unicodedata.name(ch, "") for part in _ODD_BLOCKS):
            penalty += 2
    return penalty / max(len(text), 1)


def _words(text: str) -> list[str]:
    """Runs of non-space characters that hold a letter, trimmed of leading and trailing punctuation."""
    out = []
    for token in text.split():
        token = token.strip(".,;:!?\"'()[]{}«»“”„‘’…–—-")
        if any(c.isalpha() for c in token):
            out.append(token)
    return out


def _script(ch: str) -> str | None:
    name = unicodedata.name(ch, "")
    for script in _SCRIPTS:
        if name.startswith(script):
            return script
    if any(name.startswith(p) for p in _CJK):
        return "CJK"
    return None


def _decode_prefix(sample: bytes, encoding: str) -> str | None:
    """`sample` decoded strictly, allowing a character cut off at its end; None if it is not valid."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
        return decoder.decode(sample, final=False)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf8_sequences(data: bytes) -> tuple[int, int]:
    """(valid multi-byte UTF-8 sequences, invalid bytes) in `data`."""
    good = bad = 0
    i, n = 0, len(data)
    while i < n:
        byte = data[i]
        if byte < 0x80:
            i += 1
            continue
        length = 2 if 0xC2 <= byte <= 0xDF else 3 if 0xE0 <= byte <= 0xEF else 4 if 0xF0 <= byte <= 0xF4 else 0
        if length and i + length <= n:
            try:
                data[i : i + length].decode("utf-8")
                good += 1
                i += length
                continue
            except UnicodeDecodeError:
                pass
        bad += 1
        i += 1
    return good, bad


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decode_stream(blocks: Iterator[bytes], warn: Callable[[str], None] | None = None) -> Iterator[str]:
    """`decode_bytes` for a file read block by block: the encoding is chosen on its first SAMPLE
    bytes by the same rule, and the text comes out piece by piece, newlines normalised. Bytes the
    chosen encoding cannot decode further on become U+FFFD, and `warn` hears how many."""
    head = b""
    for block in blocks:
        head += block
        if len(head) >= SAMPLE:
            break
    if not head.strip():
        raise LoadError("empty file")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif b"\x00" in head[:8192]:
        raise LoadError("binary file (contains NUL bytes)")
    elif _decode_prefix(head, "utf-8") is not None:
        encoding = "utf-8-sig"
    else:
        good, bad = _utf8_sequences(head)
        encoding = "utf-8" if good and bad <= good else best_encoding(head)
        if encoding is None:
            raise LoadError("cannot tell its text encoding (binary or corrupt?)")
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    genuine = b"\xef\xbf\xbd" if encoding.startswith("utf-8") else None  # U+FFFD written in the file itself
    replaced, held = 0, ""

    def decode(data: bytes, final: bool = False) -> str:
        nonlocal replaced, held
        text = held + decoder.decode(data, final)
        replaced += text.count("\ufffd") - (data.count(genuine) if genuine else 0) - held.count("\ufffd")
        held = "" if final or not text.endswith("\r") else "\r"  # a \r\n split between two blocks
        return _normalise(text[:-1] if held else text)

    yield decode(head)
    for block in blocks:
        yield decode(block)
    yield decode(b"", final=True)
    if replaced > 0 and warn is not None:
        warn(f"read as {encoding.replace('-sig', '')}: {replaced} byte sequence(s) it cannot decode became U+FFFD")
