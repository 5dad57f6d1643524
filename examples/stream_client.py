"""Send a video's frames to `fastmtcnn serve`'s live stream (WebSocket /v1/stream) and print the tracked faces.

    pip install ".[server]"        # websockets (the client used here) comes with the server extra
    fastmtcnn serve --port 8080 &
    python examples/stream_client.py clip.mp4 [--url ws://127.0.0.1:8080/v1/stream?min_face_size=40] [--fps 10]

The source is a video file, a camera index (0) or a URL OpenCV opens. One frame is sent, its answer awaited,
then the next: the server never has to drop this client's frames for being busy.
"""
import argparse
import asyncio
import json
import time

import cv2
from websockets.asyncio.client import connect


async def stream(source: str, url: str, fps: float, frames: int) -> None:
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise SystemExit(f"cannot open {source!r}")
    async with connect(url) as websocket:
        for _ in range(frames):
            ok, frame = capture.read()
            if not ok:
                break
            sent = time.monotonic()
            await websocket.send(cv2.imencode(".jpg", frame)[1].tobytes())  # one binary message per frame
            answer = json.loads(await websocket.recv())  # one JSON text message per frame
            if answer["type"] == "faces":
                faces = [(face["id"], [round(v) for v in face["box"]], round(face["score"], 3))
                         for face in answer["faces"]]
                print(f"frame {answer['frame']}: {faces} ({answer['timing_ms']['total']:.0f} ms)")
            elif answer["type"] == "dropped":
                print(f"frame {answer['frame']}: dropped ({answer['reason']})")
            else:
                print(f"frame {answer['frame']}: error {answer['error']['code']}: {answer['error']['message']}")
            await asyncio.sleep(max(0.0, sent + 1 / fps - time.monotonic()))  # stay under the server's rate
    capture.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="video file, camera index or URL")
    parser.add_argument("--url", default="ws://127.0.0.1:8080/v1/stream", help="the stream, with its query")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second at most")
    parser.add_argument("--frames", type=int, default=10**9, help="stop after this many frames")
    args = parser.parse_args()
    asyncio.run(stream(args.source, args.url, args.fps, args.frames))


if __name__ == "__main__":
    main()
