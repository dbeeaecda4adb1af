"""JSON nested deeper than anyone sends, told before anything parses it.

Python's json parser recurses once per level: around a thousand levels (a 2 KB text of `[`) it raises
RecursionError, which the code around it did not expect (a /prod frame of 1,000 nested arrays dropped the
connection with no close code and a traceback; a dashboard update of 5,000 levels was a plain-text 500). Every
JSON text a client sends is measured first, without parsing: its strings removed, its brackets counted.
"""

from __future__ import annotations

import operator
import re
from itertools import accumulate, count

# DynamoDB stores 32 levels; a client's JSON gets twice that before it is refused.
MAX_NESTING = 64
# A JSON string, or what is left of an unterminated one: matched once from its opening quote (possessive, so no
# backtracking), so the whole scan stays linear whatever the text.
STRING = re.compile(rb'"(?:[^"\\]|\\.?)*+"?', re.DOTALL)
# Opening brackets as 2, closing ones as 0, anything else dropped: the depth after the i-th bracket is the sum so
# far less i, which accumulate() computes without a Python loop.
AS_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def too_deep(text: str | bytes, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON text nests arrays and objects more than `limit` levels (as the parser would count them;
    an invalid text is measured as far as it goes)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # most texts: no scan at all
    steps = STRING.sub(b"", raw).translate(AS_STEPS, NOT_BRACKETS)
    return max(map(operator.sub, accumulate(steps), count(1)), default=0) > limit
