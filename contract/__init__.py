"""The model-package contract shared by the hub and the desktop app (numpy, Pillow, onnxruntime: no torch).

``package`` the model card (``model.json``) and the package folder it describes, read and checked;
``preprocess`` the one eval-time preprocessing both sides use; ``inference`` running the package's
ONNX graph; ``atomic`` the atomic file writer every store uses. docs/model-package.md is the contract.
"""
