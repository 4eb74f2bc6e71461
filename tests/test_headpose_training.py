"""The head-pose student's toolchain: labels in the crop, augmentation that keeps labels true, the net."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgefer.compile import headpose as hp
from edgefer.compile.nets import count_macs
from edgefer.edge.headpose import uncrop_pose


def test_crop_pose_is_the_inverse_of_uncrop_pose():
    rng = np.random.default_rng(0)
    for pose, angle in zip(rng.uniform([-80, -60, -40], [80, 60, 40], (50, 3)), rng.uniform(-40, 40, 50),
                           strict=True):
        back = uncrop_pose(hp.crop_pose(tuple(pose), float(angle)), float(angle))
        assert np.allclose(back, pose, atol=1e-6)


def test_augmentation_turns_the_roll_label_with_the_picture_and_flips_yaw_and_roll():
    crop = np.tile(np.arange(hp.STORE_SIZE, dtype=np.uint8) * 3, (hp.STORE_SIZE, 1))
    pose = np.array([20.0, -10.0, 5.0], np.float32)
    flips = 0
    for seed in range(40):
        image, label = hp.augment(crop, pose, np.random.default_rng(seed), turn_deg=0.0)
        assert image.shape == (hp.INPUT_SIZE, hp.INPUT_SIZE) and image.dtype == np.float32
        flipped = label[0] < 0
        flips += flipped
        assert np.allclose(label, pose * ([-1, 1, -1] if flipped else [1, 1, 1]), atol=1e-4)
    assert 5 < flips < 35
    # turning the picture in plane turns the roll label by the same angle (its sign depends on the flip)
    for seed in range(10):
        rng = np.random.default_rng(seed)
        turn = float(np.random.default_rng(seed).uniform(-15, 15))
        _, label = hp.augment(crop, np.zeros(3, np.float32), rng)
        assert abs(abs(label[2]) - abs(turn)) < 1e-3


def test_pose_set_round_trips_and_centre_crop_is_the_runtime_crop(tmp_path):
    rng = np.random.default_rng(0)
    data = hp.PoseSet(rng.integers(0, 256, (3, hp.STORE_SIZE, hp.STORE_SIZE), dtype=np.uint8),
                      rng.normal(size=(3, 3)).astype(np.float32), np.array(["aflw:train", "pseudo:x", "pseudo:y"]))
    data.save(tmp_path / "d.npz")
    back = hp.PoseSet.load(tmp_path / "d.npz")
    assert np.array_equal(back.crops, data.crops) and list(back.source) == list(data.source)
    centre = hp.centre_crops(back.crops)
    off = (hp.STORE_SIZE - hp.INPUT_SIZE) // 2
    assert centre.shape == (3, hp.INPUT_SIZE, hp.INPUT_SIZE)
    assert np.array_equal(centre[1], data.crops[1, off:off + hp.INPUT_SIZE, off:off + hp.INPUT_SIZE])


def test_pose_net_gives_three_angles_and_stays_small():
    torch.manual_seed(0)
    net = hp.PoseNet().eval()
    out = net(torch.full((2, 1, hp.INPUT_SIZE, hp.INPUT_SIZE), 128.0))
    assert out.shape == (2, 3)
    macs, params = count_macs(net, hp.INPUT_SIZE)
    assert macs < 5_000_000 and params < 300_000


def test_training_checkpoints_every_epoch_and_resumes(tmp_path):
    crops = np.stack([np.full((hp.STORE_SIZE, hp.STORE_SIZE), 40 + 3 * i, np.uint8) for i in range(20)])
    poses = np.stack([[i - 10.0, 0.0, 0.0] for i in range(20)]).astype(np.float32)
    data = hp.PoseSet(crops, poses, np.array(["aflw:train"] * 20))
    torch.manual_seed(0)
    net = hp.PoseNet()
    val = hp.centre_crops(crops[:4])
    report = hp.train(net, data, np.ones(20), val, lambda pred: float(np.abs(pred - poses[:4]).mean()),
                      tmp_path, epochs=2, batch_size=8, steps_per_epoch=3, log=lambda _: None)
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "last.pt").is_file()
    assert len(report["history"]) == 2
    again = hp.train(hp.PoseNet(), data, np.ones(20), val, lambda pred: 0.0, tmp_path, epochs=2, batch_size=8,
                     steps_per_epoch=3, log=lambda _: None)
    assert again["history"] == report["history"], "a finished run resumes to its end without training again"
    assert report["best_val"] == pytest.approx(min(h["val"] for h in report["history"]))
