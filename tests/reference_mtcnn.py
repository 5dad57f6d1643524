"""A deliberately plain MTCNN, written from the authors' detect_face.m with numpy and cv2 only.

It shares nothing with fastmtcnn's pipeline or kernels except the networks (OpenCV DNN, `fastmtcnn.engines.OpenCVNetwork`),
so comparing the two checks every compiled kernel and the stage plumbing at once. Boxes are the
authors' 1-based values throughout, as in their MATLAB code; the result is converted at the end to
fastmtcnn's convention (x1 - 1, y1 - 1, x2, y2).
"""
import numpy as np
import cv2

from fastmtcnn.engines import OpenCVNetwork
from fastmtcnn.nets import ONET, PNET, RNET, channel_map


def _to_rgb_float(image, color):
    if image.ndim == 2:
        image = image[:, :, None]
    return image[:, :, channel_map(color, image.shape[2])].astype(np.float32)


def _normalise(pixels):
    return (pixels - 127.5) * 0.0078125


def _nms(boxes, scores, threshold, mode):
    """nms.m: areas with +1, highest score first, later index first on ties, keep overlap <= threshold."""
    x1, y1, x2, y2 = boxes.T.astype(np.float64)
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = list(np.argsort(scores, kind="stable"))
    pick = []
    while order:
        i = order.pop()
        pick.append(i)
        rest = np.array(order, dtype=np.int64)
        if not len(rest):
            break
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        overlap = inter / np.minimum(area[i], area[rest]) if mode == "min" else inter / (area[i] + area[rest] - inter)
        order = [j for j, o in zip(order, overlap) if o <= threshold]
    return np.array(pick, dtype=np.int64)


def _rerec(boxes):
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out = boxes.copy()
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _bbreg(boxes, offsets, plus_one):
    w = boxes[:, 2] - boxes[:, 0] + plus_one
    h = boxes[:, 3] - boxes[:, 1] + plus_one
    return boxes + offsets * np.stack([w, h, w, h], axis=1)


def _crops(rgb, boxes, size):
    """The authors' pad + zeros crop of 1-based boxes, resized with cv2.INTER_AREA: (n, 3, size, size)."""
    height, width = rgb.shape[:2]
    out = np.empty((len(boxes), 3, size, size), np.float32)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        crop = np.zeros((y2 - y1 + 1, x2 - x1 + 1, 3), np.float32)
        sx1, sy1, sx2, sy2 = max(x1, 1), max(y1, 1), min(x2, width), min(y2, height)
        if sx2 >= sx1 and sy2 >= sy1:
            crop[sy1 - y1:sy2 - y1 + 1, sx1 - x1:sx2 - x1 + 1] = rgb[sy1 - 1:sy2, sx1 - 1:sx2]
        resized = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, 3)
        out[k] = _normalise(resized).transpose(2, 0, 1)
    return out


def detect(image, min_face_size=20, factor=0.709, thresholds=(0.6, 0.7, 0.7), color="bgr"):
    """(boxes (n, 4) in fastmtcnn's convention, scores (n,), landmarks (n, 5, 2))."""
    pnet, rnet, onet = OpenCVNetwork(PNET), OpenCVNetwork(RNET), OpenCVNetwork(ONET)
    rgb = _to_rgb_float(image, color)
    height, width = rgb.shape[:2]
    scale, short_side, scales = 12.0 / min_face_size, min(height, width) * 12.0 / min_face_size, []
    while short_side >= 12:
        scales.append(scale)
        scale, short_side = scale * factor, short_side * factor
    found = []
    for scale in scales:
        level_h, level_w = int(np.ceil(height * scale)), int(np.ceil(width * scale))
        level = cv2.resize(rgb, (level_w, level_h), interpolation=cv2.INTER_AREA).reshape(level_h, level_w, 3)
        prob, reg = pnet.forward(np.ascontiguousarray(_normalise(level).transpose(2, 0, 1)[None]))
        rows, cols = np.nonzero(prob[0, 1] >= np.float32(thresholds[0]))
        score = prob[0, 1, rows, cols]
        q1 = np.stack([np.fix((2 * cols + 1) / scale), np.fix((2 * rows + 1) / scale)], axis=1)
        q2 = np.stack([np.fix((2 * cols + 12) / scale), np.fix((2 * rows + 12) / scale)], axis=1)
        boxes = np.concatenate([q1, q2], axis=1)
        offsets = reg[0][:, rows, cols].T
        keep = _nms(boxes, score, 0.5, "union")
        found.append((boxes[keep], score[keep], offsets[keep]))
    if not found or not sum(len(f[0]) for f in found):
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
    boxes, scores, offsets = (np.concatenate([f[k] for f in found]) for k in range(3))
    keep = _nms(boxes, scores, 0.7, "union")
    boxes = np.fix(_rerec(_bbreg(boxes[keep], offsets[keep], 0)))

    prob, offsets = rnet.forward(_crops(rgb, boxes, 24))
    passed = prob[:, 1] > thresholds[1]
    boxes, scores, offsets = boxes[passed], prob[passed, 1], offsets[passed]
    keep = _nms(boxes, scores, 0.7, "union")
    boxes = np.fix(_rerec(_bbreg(boxes[keep], offsets[keep], 1)))
    if not len(boxes):
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))

    prob, offsets, points = onet.forward(_crops(rgb, boxes, 48))
    passed = prob[:, 1] > thresholds[2]
    boxes, scores, offsets, points = boxes[passed], prob[passed, 1], offsets[passed], points[passed]
    w, h = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
    landmarks = np.stack([w * points[:, :5] + boxes[:, 0:1] - 1, h * points[:, 5:] + boxes[:, 1:2] - 1], axis=2)
    boxes = _bbreg(boxes, offsets, 1)
    keep = _nms(boxes, scores, 0.7, "min")
    boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
    return boxes - [1, 1, 0, 0], scores, landmarks
