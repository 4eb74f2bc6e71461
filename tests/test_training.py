from __future__ import annotations

import torch

from edgefer.compile.augment import AugmentConfig, augment_batch


def test_augment_keeps_shape_range_and_is_seeded():
    x = torch.rand(16, 1, 48, 48) * 255
    a = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    b = augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 255
    assert not torch.allclose(a, x)


def test_all_off_is_identity_up_to_resampling():
    off = AugmentConfig(flip=0, rotate_deg=0, scale=0, shift=0, brightness=0, contrast=0, gamma=0, noise=0,
                        blur=0, occlusion=0)
    x = torch.rand(4, 1, 48, 48) * 255
    y = augment_batch(x, off, torch.Generator().manual_seed(0))
    assert torch.allclose(x, y, atol=1e-2)


def test_flip_mirrors():
    only_flip = AugmentConfig(flip=1, rotate_deg=0, scale=0, shift=0, brightness=0, contrast=0, gamma=0, noise=0,
                              blur=0, occlusion=0)
    x = torch.rand(2, 1, 48, 48) * 255
    y = augment_batch(x, only_flip, torch.Generator().manual_seed(0))
    assert torch.allclose(y, torch.flip(x, dims=[3]), atol=1e-2)


def test_class_weights_lift_rare_classes_and_keep_mean_one():
    import numpy as np

    from edgefer.compile.train import class_weights

    targets = np.array([0] * 90 + [1] * 10)
    w = class_weights(targets, 2, beta=1.0)
    assert w[1] / w[0] == 9.0
    assert abs(float(w[targets].mean()) - 1.0) < 1e-6
    assert torch.equal(class_weights(targets, 2, beta=0.0), torch.ones(2))
