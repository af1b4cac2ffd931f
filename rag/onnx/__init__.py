"""ONNX export and quantisation shared by every encoder-only role, with the task as a parameter."""
