"""Numeric kernels of the detector: resampling (`resample`), box arithmetic (`boxes`), the stream tracker's
thumbnails (`cells`), one namespace.

Every kernel of the pipeline exists exactly once, in one of these modules. They are Numba ``@njit(cache=True)``
functions on plain NumPy arrays and scalars (no OpenCV, no Python objects), serial (never ``parallel=True``: the
detector decides about threads elsewhere), and ``nogil=True``: a long kernel never blocks the other threads
(e.g. a server's event loop).

Why Numba and not Cython:

* no build step: ``pip install .`` needs no C compiler and the wheel stays pure Python;
* the kernels are specialised by Numba on the exact float32 / uint8 / int32 arrays we pass them, so the
  loops compile to tight machine code without writing typed variants by hand;
* ``cache=True`` stores the compiled code next to these files, so a fresh process starts warm.

Conventions (shared with the rest of the package):

* images are uint8 ``(H, W, C)`` with C = 1, 3 or 4; a ``channels`` int32 array of length 3 names the
  source channel feeding network channels 0, 1, 2 (the nets want RGB: BGR input -> [2, 1, 0]);
* network input is ``(v - 127.5) * 0.0078125`` in float32;
* boxes are float32 ``(N, 4)`` = x1, y1, x2, y2 in 0-based *inclusive* pixel indices, i.e. the authors'
  MATLAB 1-based values minus 1;
* resampling reproduces OpenCV's ``cv2.INTER_AREA`` on float32 data (see ``axis_weights``).

Arrays come in and go out as float32; float64 is only used for scalars (so that MATLAB's double
arithmetic is mirrored where it decides an integer, e.g. ``fix``) and for O(n) scratch in ``nms``.
"""
from .boxes import (NMS_GRID_MIN_BOXES, PNET_CELL, PNET_STRIDE, calibrate, candidates_from_scores, iou_matrix,
                    landmarks_in_boxes, nms, output_faces, square, truncate_boxes)
from .cells import best_shift, cell_means, changed_cells
from .resample import (PIXEL_MEAN, PIXEL_SCALE, ZERO_PIXEL, axis_weights, crop_resize_normalize, pyramid_level_size,
                       pyramid_scales, resize_normalize_into, resize_part_normalize_into,
                       uses_area_tables)

__all__ = ["NMS_GRID_MIN_BOXES", "PIXEL_MEAN", "PIXEL_SCALE", "PNET_CELL", "PNET_STRIDE", "ZERO_PIXEL",
           "axis_weights", "best_shift", "calibrate", "candidates_from_scores", "cell_means", "changed_cells",
           "crop_resize_normalize", "iou_matrix", "landmarks_in_boxes", "nms", "output_faces", "pyramid_level_size",
           "pyramid_scales", "resize_normalize_into", "resize_part_normalize_into", "square", "truncate_boxes",
           "uses_area_tables"]
