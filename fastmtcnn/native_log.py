"""Log lines native libraries write straight to the process's stderr (OpenCV's logger, FFmpeg, libjpeg), caught.

`with NativeLog() as log:` points file descriptor 2 at a temporary file for the block, so `[ WARN:0@0.03] ...
can't open camera by index`, `moov atom not found` or `Corrupt JPEG data: premature end of data segment` are kept
for our own one-line messages instead of reaching the terminal. File descriptor 2 is the whole process's: use
it only where one thread reads or decodes at a time (the command line), never in the service.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from typing import List, Optional

#: Held while fd 2 points at a capture file: progress output takes it so it is never swallowed.
STDERR_LOCK = threading.RLock()
#: Most bytes of native log lines kept (the newest quarter is kept when it is reached).
MAX_LOG_BYTES = 64 * 1024
_LOG_PREFIX = re.compile(r"^\[[^\]]*\]\s*(global\s+\S+:\d+\s+\S+\s+)?")


class NativeLog:
    """Lines written to file descriptor 2 (OpenCV's logger, FFmpeg) inside `with log:` blocks, kept, not shown."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()
        self._saved: Optional[int] = None

    def __enter__(self) -> "NativeLog":
        STDERR_LOCK.acquire()
        sys.stderr.flush()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._keep_the_tail()
        STDERR_LOCK.release()

    def _keep_the_tail(self) -> None:
        """Bound the file: a stream with a decode warning on every frame would otherwise grow it for hours."""
        size = os.fstat(self._file.fileno()).st_size
        if size > MAX_LOG_BYTES:
            self._file.seek(size - MAX_LOG_BYTES // 4)
            tail = self._file.read()
            self._file.seek(0)
            self._file.truncate()
            self._file.write(tail[tail.find(b"\n") + 1:])  # from the first whole line

    def lines(self, limit: int = 2, prefixed_only: bool = True) -> List[str]:
        """The last `limit` distinct log messages, prefixes (`[ WARN:0@0.03] global file.cpp:12 open`) removed.
        `prefixed_only`: only lines that start with `[` (OpenCV's and FFmpeg's; the lines after an OpenCV
        exception's are its traceback); False also keeps bare lines (libjpeg's `Corrupt JPEG data: ...`)."""
        self._file.seek(0)
        text = self._file.read().decode("utf-8", "replace")
        found: List[str] = []
        for line in text.splitlines():
            if line.startswith("[") or not prefixed_only:
                message = _LOG_PREFIX.sub("", line).strip()
                if message and not message.endswith(":") and message not in found:  # "...: raised exception:"
                    found.append(message)
        return found[-limit:]

    def said(self) -> str:
        lines = self.lines()
        return f" (OpenCV/FFmpeg: {'; '.join(lines)})" if lines else ""

    def damage_warning(self) -> Optional[str]:
        """After an image decode inside the block: the decoder's complaints as one warning, or None."""
        lines = self.lines(prefixed_only=False)
        if not lines:
            return None
        return f"the decoder reported damaged data ({'; '.join(lines)}): faces are from what it decoded"

    def close(self) -> None:
        self._file.close()
