"""A bare Management API endpoint for the posting-rate bench: 200 to every POST, 410 for ids starting 'gone'."""

from __future__ import annotations

import os
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    gone = "/@connections/gone" in scope["path"]
    headers = [(b"content-length", b"0")] + ([(b"x-amzn-errortype", b"GoneException")] if gone else [])
    await send({"type": "http.response.start", "status": 410 if gone else 200, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning", access_log=False)
