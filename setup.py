"""Packaging: the top-level weights/ folder ships inside the package as fastmtcnn.weights."""
from setuptools import setup

setup(
    packages=["fastmtcnn", "fastmtcnn.evaluation", "fastmtcnn.weights"],
    package_dir={"fastmtcnn": "fastmtcnn", "fastmtcnn.weights": "weights"},
    package_data={"fastmtcnn.weights": ["*.prototxt", "*.caffemodel", "SHA256SUMS", "LICENSE", "NOTICE.md"]},
)
