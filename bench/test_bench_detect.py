"""End to end: `Detector.detect` on a BGR image at VGA and 1080p, min face 20 and 40, 1 and 2 threads, per engine."""
import pytest

from .conftest import ENGINES, bench_image, record, run_rounds, with_slowdown


@ENGINES
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("min_face", [20, 40])
@pytest.mark.parametrize("size", ["vga", "1080p"])
def test_detect(benchmark, detector_factory, size, min_face, threads, engine):
    benchmark.group = f"detect {size}"
    image = bench_image(size)
    detector = detector_factory(min_face, threads, engine)
    faces = run_rounds(benchmark, with_slowdown(detector.detect), image.pixels)
    record(benchmark, image, min_face, engine, faces=len(faces), stage="end to end")
