"""fastmtcnn under several Python environments (OpenCV versions, engines) against facenet-pytorch, in one run."""
