"""Detect faces in a folder of images with Ray Data and write Parquet (needs `pip install "fastmtcnn[ray]"`).

    python examples/ray_folder_to_parquet.py PHOTOS/ faces_parquet/ [--actors 2] [--batch-size 16]
        [--min-face-size 20] [--read-images] [--address auto]

Reads the same files as `fastmtcnn batch` (jpg/jpeg/png/webp/bmp, any case, recursive) as encoded bytes
(`ray.data.read_binary_files`), so OpenCV decodes them exactly as the CLI does; `--read-images` uses
`ray.data.read_images` (PIL decoding, RGB arrays) instead. Columns: see `fastmtcnn.ray_data`. Without
`--address` a local Ray instance with `--actors` CPUs is started.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import ray

from fastmtcnn.batch import find_images
from fastmtcnn.ray_data import detect_faces, read_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input_dir", type=Path)
    parser.add_argument("out_dir", type=Path, help="Parquet folder to write")
    parser.add_argument("--actors", type=int, default=2, help="detector actors, one CPU each (default 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--min-face-size", type=float, default=20)
    parser.add_argument("--read-images", action="store_true", help="decode with ray.data.read_images (PIL, RGB)")
    parser.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")
    args = parser.parse_args()

    start = time.monotonic()
    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.actors, include_dashboard=False)
    dataset = read_folder(args.input_dir, read_images=args.read_images)
    column, color = ("image", "rgb") if args.read_images else ("bytes", "bgr")
    dataset = detect_faces(dataset, actors=args.actors, batch_size=args.batch_size, image_column=column,
                           color=color, min_face_size=args.min_face_size)
    dataset.write_parquet(str(args.out_dir))
    seconds = time.monotonic() - start
    count = len(find_images(args.input_dir))
    print(f"{count} images -> {args.out_dir} in {seconds:.1f} s ({count / seconds:.1f} images/s, "
          "Ray start-up included)")


if __name__ == "__main__":
    main()
