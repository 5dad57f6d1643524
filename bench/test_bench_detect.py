"""End to end: `Detector.detect` on a BGR image at VGA and 1080p, min face 20 and 40, 1 and 2 threads."""
import pytest

from .conftest import bench_image, record, run_rounds, with_slowdown


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("min_face", [20, 40])
@pytest.mark.parametrize("size", ["vga", "1080p"])
def test_detect(benchmark, detector_factory, size, min_face, threads):
    benchmark.group = f"detect {size}"
    image = bench_image(size)
    detector = detector_factory(min_face, threads)
    faces = run_rounds(benchmark, with_slowdown(detector.detect), image.pixels)
    record(benchmark, image, min_face, faces=len(faces), stage="end to end")
