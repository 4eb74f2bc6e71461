"""Several data sets trained as one (FER2013 + RAF-DB), an ImageNet teacher, and the yaw-like warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from fixtures import load_tool, write_eye_folder, write_fer2013, write_rafdb

from edgefer.compile import steps
from edgefer.compile.data import MIX_ROW_STRIDE, DataError, dataset_info, load_dataset, source_of_rows
from edgefer.compile.train import TrainConfig

FAST = dict(lr=0.05, threads=1, batch_size=32, epochs=1, max_steps_per_epoch=3, alpha=0.0)


@pytest.fixture
def mix(tmp_path):
    fer = tmp_path / "fer2013.csv"
    write_fer2013(fer, {"Training": 70, "PublicTest": 21, "PrivateTest": 14})
    write_rafdb(tmp_path / "rafdb", per_class=10)
    return [str(fer), str(tmp_path / "rafdb")]


def test_a_mix_joins_each_sources_own_splits_with_unique_row_keys(mix):
    train = load_dataset(mix, "train", size=64)
    val, test = load_dataset(mix, "PublicTest"), load_dataset(mix, "test")
    raf_val = load_dataset(mix[1], "val")
    assert train.images.shape == (70 + 70 - len(raf_val), 64, 64)
    assert len(val) == 21 + len(raf_val) and val.images.shape[1:] == (48, 48)
    assert len(test) == 14 and set(source_of_rows(test.rows)) == {0}  # RAF-DB's test split is held out
    assert np.bincount(source_of_rows(train.rows)).tolist() == [70, 70 - len(raf_val)]
    assert len(set(train.rows.tolist()) | set(val.rows.tolist()) | set(test.rows.tolist())) == 105 + 70
    # The same rows at another size: a teacher's soft labels fit a student trained at its own size.
    assert np.array_equal(load_dataset(mix, "train").rows, train.rows)
    assert train.rows[-1] // MIX_ROW_STRIDE == 1
    info = dataset_info(mix)
    assert info["name"] == "FER2013+RAF-DB" and info["test"] == "test" and info["task"] == "expression"
    assert dataset_info(mix[:1])["name"] == "FER2013"  # one path in a list is that path


def test_a_mix_refuses_two_tasks(mix, tmp_path):
    write_eye_folder(tmp_path / "eyes", n_faces=10)
    with pytest.raises(DataError, match="one task"):
        load_dataset([mix[0], tmp_path / "eyes"], "train")


def test_teacher_soft_labels_at_one_size_distil_a_student_at_another(mix, tmp_path):
    soft = tmp_path / "teacher" / "soft_labels.npz"
    desc = steps.make_teacher(mix, soft, train_arch="micro", cfg=TrainConfig(**FAST), size=64)
    assert desc["data"] == mix and desc["teachers"] == ["trained:micro"]
    student = steps.distill(mix, tmp_path / "student", arch="micro", soft_labels=soft,
                            cfg=TrainConfig(**{**FAST, "alpha": 0.5}))
    assert student["input_size"] == 48 and 0.0 <= student["val_acc"] <= 1.0


def test_imagenet_teacher_reads_grey_pixels_and_averages_its_mirror():
    pytest.importorskip("efficientnet_lite_pytorch")
    from edgefer.compile.pretrained import build_pretrained

    torch.manual_seed(0)
    model = build_pretrained("efficientnet-lite0", 7, 32, weights=False).eval()
    x = torch.rand(3, 1, 32, 32) * 255
    with torch.no_grad():
        averaged = model(x)
        assert torch.allclose(averaged, model(torch.flip(x, dims=[3])), atol=1e-5)
        model.tta_flip = False
        assert torch.allclose(averaged, 0.5 * (model(x) + model(torch.flip(x, dims=[3]))), atol=1e-6)
    with pytest.raises(ValueError, match="N x 1 x H x W"):
        model(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown pretrained"):
        build_pretrained("resnet-9000", 7, 32)


def test_yaw_warp_in_training_matches_the_robustness_table():
    from edgefer.compile.augment import AugmentConfig, _yaw_warp, yaw_homography
    from edgefer.compile.robustness import PERTURBATIONS

    assert np.allclose(yaw_homography(0.0, 48), np.eye(3), atol=1e-9)
    rng = np.random.default_rng(0)
    images = cv2.resize(rng.integers(0, 256, (6, 12, 12), dtype=np.uint8).transpose(1, 2, 0), (48, 48),
                        interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1).copy()
    gen_angles = (torch.rand(6, generator=torch.Generator().manual_seed(3)) * 2 - 1) * 45.0
    warped = _yaw_warp(torch.from_numpy(images).float().unsqueeze(1), AugmentConfig(yaw=1.0, yaw_deg=45.0),
                       torch.Generator().manual_seed(3))[:, 0].numpy()
    for image, angle, out in zip(images, gen_angles.tolist(), warped, strict=True):
        reference = cv2.warpPerspective(image, yaw_homography(angle, 48), (48, 48), flags=cv2.INTER_LINEAR,
                                        borderMode=cv2.BORDER_REPLICATE)
        assert np.abs(out - reference).mean() < 1.5
    # A turned crop narrows, its far half more: a bright bar at x >= 44 starts near x = 36 when the right half turns
    # away (23.5 + 20.5 cos45 * 96 / (96 + 20.5 sin45)) and near x = 41 when it turns closer.
    bar = np.zeros((1, 48, 48), dtype=np.uint8)
    bar[:, :, 44:] = 255
    first_lit = {name: int(np.flatnonzero(PERTURBATIONS[name](bar)[0][24] > 127)[0])
                 for name in ("yaw_45deg", "yaw_-45deg")}
    assert first_lit == {"yaw_45deg": 36, "yaw_-45deg": 41}


def test_ferplus_votes_in_a_mix_label_the_fer_rows_only(mix, tmp_path):
    from fixtures import write_ferplus

    from edgefer.compile.teacher import load_soft_labels

    labels = write_fer2013(tmp_path / "again.csv", {"Training": 70, "PublicTest": 21, "PrivateTest": 14})
    write_ferplus(tmp_path / "fer2013new.csv", labels)
    steps.make_teacher(mix, tmp_path / "votes.npz", votes=tmp_path / "fer2013new.csv")
    probs, _ = load_soft_labels(tmp_path / "votes.npz", load_dataset(mix, "train"))
    rows = load_dataset(mix, "train").rows
    from_fer = source_of_rows(rows) == 0
    voted = from_fer & (rows % 11 != 10)  # the fixture's every 11th FER row has 'unknown' votes only
    assert not np.isnan(probs[voted]).any() and np.isnan(probs[~voted]).all()
    assert np.allclose(probs[voted].sum(axis=1), 1.0, atol=1e-5)


def test_select_student_scores_each_validation_set_on_its_own(mix, tmp_path):
    select_student = load_tool("select_student")
    runs = []
    for seed in (0, 1):
        steps.distill(mix, tmp_path / f"run{seed}", arch="micro", cfg=TrainConfig(**{**FAST, "seed": seed}))
        runs.append(tmp_path / f"run{seed}")
    result = select_student.select(mix[0], runs, also=[mix[1]])
    for row in result["candidates"]:
        scores = [v["score"] for v in row["per_set"].values()]
        assert len(scores) == 2 and row["score"] == pytest.approx(sum(scores) / 2)
        assert row["accuracy"] == row["per_set"]["fer2013.csv:PublicTest"]["accuracy"]
    assert result["chosen"] == max(result["candidates"], key=lambda r: r["score"])["run"]
    assert "averaged over" in result["rule"]
    alone = select_student.select(mix[0], runs)  # one set: the rule names its validation split
    assert alone["rule"].endswith("(fer2013.csv:PublicTest)") and alone["split"] == "fer2013.csv:PublicTest"
