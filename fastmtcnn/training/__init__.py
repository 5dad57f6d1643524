"""Training the three MTCNN networks (Zhang et al. 2016) and exporting them as Caffe weights.

Laid out like torchvision's `references/detection`: `readers` (annotations), `samples` (per-stage training
crops, R-Net/O-Net ones mined with the project's own cascade), `nets` (torch P/R/O-Net with the Caffe layer
names), `loss` (multi-task loss + online hard sample mining), `loop` (optimiser, schedule, checkpoints),
`export` (torch <-> det{1,2,3}.prototxt/.caffemodel) and `cli` (`fastmtcnn train`). Only `nets`, `loss`,
`loop`, `export` and `stages` need torch (`pip install "fastmtcnn[train]"`); the detector never imports it.
The only bridge back to inference is the weights folder: `Detector(weights=DIR)`.
"""
