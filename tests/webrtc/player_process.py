"""A WHEP player in its own process, so a test can kill it without any goodbye (a closed laptop lid).

Protocol on stdin/stdout, one JSON object per line:
    → {"offer": sdp}          (printed at start)
    ← {"answer": sdp}         (read)
    → {"frame": [w, h]}       (printed for the first decoded frame), then it plays until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from tests.webrtc.viewer import Viewer


async def main() -> None:
    viewer = Viewer()
    print(json.dumps({"offer": await viewer.offer()}), flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await viewer.accept(json.loads(line)["answer"])
    frame = await viewer.frame()
    print(json.dumps({"frame": [frame.width, frame.height]}), flush=True)
    while True:
        await viewer.frame()


if __name__ == "__main__":
    asyncio.run(main())
