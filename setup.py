"""Packaging: the top-level weights/ folder ships inside the package as fastmtcnn.weights (metadata: pyproject.toml)."""
from setuptools import find_namespace_packages, setup

setup(
    # namespace packages too, so that the page's data folder fastmtcnn/server/static is a package setuptools knows
    packages=find_namespace_packages(include=["fastmtcnn", "fastmtcnn.*"], exclude=["*.__pycache__"])
    + ["fastmtcnn.weights"],
    package_dir={"fastmtcnn.weights": "weights"},
    package_data={"fastmtcnn": ["py.typed"], "fastmtcnn.server.static": ["*.html", "*.css", "*.js"],
                  "fastmtcnn.weights": ["*.prototxt", "*.caffemodel", "SHA256SUMS", "LICENSE", "NOTICE.md"]},
)
