"""The BentoML serving runtime: not a kfp stage.

bento.py builds a registered version's bento, exports it and records it on the version (the
one way a bento comes to be); service.py is the service the bento runs (typed requests, ONNX
Runtime or scikit-learn, metrics, inference log); onnx_export.py converts and verifies the ONNX
graph, onnx_feed.py builds its inputs from request rows; inference_log.py writes what was served;
local.py serves a version on this machine (`kubecycle serve`).
"""
