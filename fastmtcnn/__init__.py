"""fastmtcnn: a fast, faithful CPU implementation of MTCNN face detection and 5-point alignment.

    >>> import cv2, fastmtcnn
    >>> detector = fastmtcnn.Detector(min_face_size=20)
    >>> faces = detector.detect(cv2.imread("photo.jpg"))      # BGR uint8, as OpenCV reads it
    >>> faces.boxes, faces.scores, faces.landmarks            # (N, 4), (N,), (N, 5, 2) float32
"""
from .alignment import align, crop_face
from .detector import Detector, Face, Faces
from .image_input import ImageError

__version__ = "0.1.0"
__all__ = ["Detector", "Face", "Faces", "ImageError", "align", "crop_face", "__version__"]
