"""Training: the Classifier LightningModule, the Lightning CLI, its callbacks, adversarial
training and the small classifier recipe the studies share.

The top of the training stack: it builds on ``models``, ``data``, ``curriculum``,
``adversarial`` and ``generative``, and none of them imports it.
"""
