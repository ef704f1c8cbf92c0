"""Model package side shared by the hub and the desktop app.

Modules here other than the (future) torch conversion module import only numpy and Pillow,
so the clinic install can use them without torch.
"""
