"""The exceptions fastmtcnn raises on purpose: one hierarchy, caught by type, never by message text.

    FastMTCNNError
    ├── ImageError (ValueError)            the image cannot be used; the message says what to pass instead
    │   ├── ImageFileNotFound (FileNotFoundError)
    │   ├── ImageTooLarge                  over the pixel budget (known from the header, before decoding)
    │   └── UnsupportedImage               not an image format we can size and decode safely
    │       ├── ImageSizeUnknown           a known format whose header does not give its size
    │       └── ImageTruncated             a known format whose data ends before what its header announces
    ├── SettingsError (ValueError)         a detector setting out of its documented range
    ├── DatasetError (ValueError)          an evaluation input (annotated JSONL set, reference run) is malformed
    │   └── DatasetFileNotFound (FileNotFoundError)
    └── DetectionCancelled (TimeoutError)  a detection passed its deadline or was cancelled; it stopped working

Each one is also a `ValueError` (and the `...FileNotFound` ones a `FileNotFoundError`), so code written against the
built-in types keeps working. Wrong *types* (a list instead of an array, floats instead of uint8) are `TypeError`.
"""


class FastMTCNNError(Exception):
    """Base class of the errors fastmtcnn raises deliberately."""


class ImageError(FastMTCNNError, ValueError):
    """The image cannot be used; the message says why and what to pass instead."""


class ImageFileNotFound(ImageError, FileNotFoundError):
    """The image path does not exist."""


class ImageTooLarge(ImageError):
    """The image (or the first pyramid level it needs) has more pixels than the configured limit."""


class UnsupportedImage(ImageError):
    """The bytes are not an image OpenCV can decode, or their size cannot be read before decoding."""


class ImageSizeUnknown(UnsupportedImage):
    """A known format whose size cannot be read before decoding (truncated or odd header): not decoded blindly."""


class ImageTruncated(UnsupportedImage):
    """The file is cut short (or its data is corrupt): refused before decoding, whatever the OpenCV release."""


class SettingsError(FastMTCNNError, ValueError):
    """A detector setting is out of range; the message gives the accepted range."""


class DatasetError(FastMTCNNError, ValueError):
    """An evaluation input file is malformed; the message names the file (and line) and what is expected."""


class DatasetFileNotFound(DatasetError, FileNotFoundError):
    """An evaluation input file does not exist."""


class DetectionCancelled(FastMTCNNError, TimeoutError):
    """A detection stopped before finishing: its deadline passed or it was cancelled (e.g. at shutdown)."""
