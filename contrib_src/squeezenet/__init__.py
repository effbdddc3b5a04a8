"""SqueezeNet 1.0 from the paper's Deep-Compression weights: decoder, ONNX graph, model files.

Only the init step (build.py) needs the `onnx` package; inference needs ONNX Runtime alone.
"""
