"""fastmtcnn: a fast, faithful CPU implementation of MTCNN face detection and 5-point alignment.

    >>> import cv2, fastmtcnn
    >>> detector = fastmtcnn.Detector(min_face_size=20)
    >>> faces = detector.detect(cv2.imread("photo.jpg"))      # BGR uint8, as OpenCV reads it
    >>> faces.boxes, faces.scores, faces.landmarks            # (N, 4), (N,), (N, 5, 2) float32
"""
from importlib.metadata import PackageNotFoundError, version

from .alignment import align, crop_face
from .detector import Detector, Face, Faces
from .errors import (DetectionCancelled, FastMTCNNError, ImageError, ImageFileNotFound, ImageSizeUnknown,
                     ImageTooLarge, ImageTruncated, SettingsError, UnsupportedImage)
from .runtime import set_num_threads
from .settings import CascadeSettings

try:
    __version__ = version("fastmtcnn")  # one version source: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = ["CascadeSettings", "DetectionCancelled", "Detector", "Face", "Faces", "FastMTCNNError", "ImageError",
           "ImageFileNotFound", "ImageSizeUnknown", "ImageTooLarge", "ImageTruncated", "SettingsError",
           "UnsupportedImage", "align",
           "crop_face", "set_num_threads", "__version__"]
