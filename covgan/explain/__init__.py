"""Explanations as pure functions of tensors: inversion (Eq. 2), traversal, Grad-CAM and the
other maps, and the batch pipeline that chains them."""
