"""The gateway's log output: one format for its own lines and uvicorn's, no query string in any of them, and
every line one line.

Query strings carry tokens (`?token=...`) and user ids; uvicorn writes the full path of every WebSocket it
accepts (`"WebSocket /socket.io/?EIO=4&token=..." [accepted]`) and, with an access log, of every request.
Clients choose event names, paths, Host headers and error texts that end up in messages: a newline in one would
start a line of the client's making (`... refused: x\\n2025-01-01 ERROR ...`), so control characters in a message
are escaped. The filters sit on the root handler, so every record that reaches the output passes them, whoever
logged it; the gateway's own lines escape a client's string where they log it too (`printable`).
"""

from __future__ import annotations

import logging
import re

# A path followed by its query: `/socket.io/?EIO=4&token=...` -> `/socket.io/`. Anything up to whitespace or a
# quote is the query, as in uvicorn's `"GET /path?query HTTP/1.1"` and `"WebSocket /path?query"`.
QUERY = re.compile(r"(/[^\s\"'?]*)\?[^\s\"']*")
# C0 and C1 controls, DEL, and the two Unicode line separators some viewers break lines at.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def printable(text: str) -> str:
    """A client's string as a log line may carry it: each control character written as its escape (`\\n`)."""
    return CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


class WithoutQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = QUERY.sub(r"\1", message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class OneLineEach(logging.Filter):
    """The message of each record on one line, whoever logged it (a traceback, formatted apart, keeps its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if CONTROL.search(message):
            record.msg, record.args = printable(message.rstrip("\n")), ()
        return True


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    for handler in logging.getLogger().handlers:
        handler.addFilter(WithoutQueryStrings())
        handler.addFilter(OneLineEach())
    for noisy in ("botocore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
