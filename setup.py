"""Packaging: the top-level weights/ folder ships inside the package as fastmtcnn.weights (metadata: pyproject.toml)."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["fastmtcnn", "fastmtcnn.*"]) + ["fastmtcnn.weights"],
    package_dir={"fastmtcnn.weights": "weights"},
    package_data={"fastmtcnn": ["py.typed"], "fastmtcnn.server": ["static/*.html", "static/*.css", "static/*.js"],
                  "fastmtcnn.weights": ["*.prototxt", "*.caffemodel", "SHA256SUMS", "LICENSE", "NOTICE.md"]},
)
