"""Each cascade stage alone, and the bare network forwards on the same inputs (overhead = stage - forwards).

Stages are `fastmtcnn.pipeline.Cascade` methods, on a cascade from `Detector(...)._cascade()`:
propose (pyramid + P-Net + candidates + NMS), refine (R-Net crops + forward + NMS), output (O-Net crops +
forward + landmarks + NMS). The inputs of refine/output are the real outputs of the previous stage on the
same image, so their sizes (recorded in extra_info) are what `detect` sees. One thread throughout; every
benchmark runs once per engine (`ENGINES`, the last part of the test id).
"""
import pytest

from .conftest import ENGINES, bench_image, record, run_rounds, with_slowdown
from .net_inputs import CHANNELS, crops, pyramid_blobs

SIZES = ["vga", "1080p"]
MIN_FACES = [20, 40]
params = pytest.mark.parametrize("size,min_face", [(s, m) for s in SIZES for m in MIN_FACES])


def forward_batches(network, batch, max_batch):
    """Forward `batch` in chunks of `max_batch`, as the cascade does."""
    return [network.forward(batch[start:start + max_batch]) for start in range(0, len(batch), max_batch)]


_STAGE_INPUTS = {}


def stage_inputs(size, min_face, cascade):
    """(image, candidates after propose, boxes after refine) of one image / min face / engine (computed once)."""
    key = (size, min_face, cascade.engine.backend, cascade.engine.precision)
    if key not in _STAGE_INPUTS:
        image = bench_image(size)
        candidates = cascade.propose(image.pixels, CHANNELS)
        refined = cascade.refine(image.pixels, CHANNELS, candidates)
        _STAGE_INPUTS[key] = image, candidates, refined
    return _STAGE_INPUTS[key]


@pytest.fixture
def cascade(detector_factory, request):
    params = request.node.callspec.params
    if "engine" not in params:  # engine-independent (the pyramid kernels): OpenCV's cascade
        return detector_factory(params["min_face"], 1)._cascade()
    return detector_factory(params["min_face"], 1, params["engine"])._cascade()


def pyramid_info(image, cascade):
    blobs = pyramid_blobs(image.pixels, cascade)
    return {"levels": len(blobs), "pyramid_pixels": int(sum(b.shape[2] * b.shape[3] for b in blobs)),
            "largest_level": f"{blobs[0].shape[3]}x{blobs[0].shape[2]}" if blobs else "none"}


@ENGINES
@params
def test_stage1_propose(benchmark, cascade, size, min_face, engine):
    benchmark.group = f"stage 1 P-Net {size}"
    image, candidates, _ = stage_inputs(size, min_face, cascade)
    run_rounds(benchmark, with_slowdown(cascade.propose), image.pixels, CHANNELS)
    record(benchmark, image, min_face, engine, stage="propose", candidates_out=len(candidates),
           **pyramid_info(image, cascade))


@params
def test_stage1_pyramid(benchmark, cascade, size, min_face):
    """The pyramid kernels alone: scales, level sizes, resize + normalise of every level into a fresh blob."""
    benchmark.group = f"stage 1 P-Net {size}"
    image, _, _ = stage_inputs(size, min_face, cascade)
    run_rounds(benchmark, pyramid_blobs, image.pixels, cascade)
    record(benchmark, image, min_face, stage="pyramid", **pyramid_info(image, cascade))


@ENGINES
@params
def test_stage1_pnet_forwards(benchmark, cascade, size, min_face, engine):
    """P-Net forwards alone on every pyramid level blob of `propose`."""
    benchmark.group = f"stage 1 P-Net {size}"
    image, _, _ = stage_inputs(size, min_face, cascade)
    blobs = pyramid_blobs(image.pixels, cascade)
    run_rounds(benchmark, lambda: [cascade.pnet.forward(blob) for blob in blobs])
    record(benchmark, image, min_face, engine, stage="pnet forwards", **pyramid_info(image, cascade))


@ENGINES
@params
def test_stage2_refine(benchmark, cascade, size, min_face, engine):
    benchmark.group = f"stage 2 R-Net {size}"
    image, candidates, refined = stage_inputs(size, min_face, cascade)
    run_rounds(benchmark, with_slowdown(cascade.refine), image.pixels, CHANNELS, candidates)
    record(benchmark, image, min_face, engine, stage="refine", candidates_in=len(candidates), boxes_out=len(refined))


@ENGINES
@params
def test_stage2_rnet_forward(benchmark, cascade, size, min_face, engine):
    """R-Net forward alone on the 24x24 crops of the candidates `refine` gets."""
    benchmark.group = f"stage 2 R-Net {size}"
    image, candidates, _ = stage_inputs(size, min_face, cascade)
    bench_forward(benchmark, cascade, cascade.rnet, image, candidates, min_face, engine, "rnet forward")


@ENGINES
@params
def test_stage3_output(benchmark, cascade, size, min_face, engine):
    benchmark.group = f"stage 3 O-Net {size}"
    image, _, refined = stage_inputs(size, min_face, cascade)
    result = run_rounds(benchmark, with_slowdown(cascade.output), image.pixels, CHANNELS, refined)
    record(benchmark, image, min_face, engine, stage="output", boxes_in=len(refined), faces=len(result.scores))


@ENGINES
@params
def test_stage3_onet_forward(benchmark, cascade, size, min_face, engine):
    """O-Net forward alone on the 48x48 crops of the boxes `output` gets."""
    benchmark.group = f"stage 3 O-Net {size}"
    image, _, refined = stage_inputs(size, min_face, cascade)
    bench_forward(benchmark, cascade, cascade.onet, image, refined, min_face, engine, "onet forward")


def bench_forward(benchmark, cascade, network, image, boxes, min_face, engine, stage):
    """Time `network` alone on the crops of `boxes`, in max_batch chunks as the cascade runs it."""
    batch = crops(image.pixels, boxes, network.spec.input_size)
    run_rounds(benchmark, forward_batches, network, batch, cascade.settings.max_batch)
    record(benchmark, image, min_face, engine, stage=stage, batch=len(batch), max_batch=cascade.settings.max_batch)
