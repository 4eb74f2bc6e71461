from __future__ import annotations

import gzip

import numpy as np
import pytest
from fixtures import synthetic_face, write_fer2013, write_image_folder

from edgefer.compile.data import (
    FER_LABELS,
    DataError,
    ferplus_soft_labels,
    load_dataset,
    read_fer2013_csv,
    read_ferplus_votes,
    read_image_folder,
)

GOOD_PIXELS = " ".join(["128"] * 48 * 48)


def _csv(tmp_path, body: str, name: str = "fer2013.csv"):
    path = tmp_path / name
    path.write_text("emotion,pixels,Usage\n" + body)
    return path


def test_reads_splits_labels_and_row_indices(tmp_path):
    path = tmp_path / "fer2013.csv"
    labels = write_fer2013(path, {"Training": 14, "PublicTest": 7, "PrivateTest": 7})
    sets = read_fer2013_csv(path)
    assert set(sets) == {"Training", "PublicTest", "PrivateTest"}
    train = sets["Training"]
    assert train.images.shape == (14, 48, 48) and train.images.dtype == np.uint8
    assert list(train.targets) == list(labels[:14])
    assert list(sets["PrivateTest"].rows) == list(range(21, 28))
    rng = np.random.default_rng(0)
    assert np.array_equal(train.images[0], synthetic_face(int(labels[0]), rng))


def test_gzip_and_plain_read_the_same(tmp_path):
    write_fer2013(tmp_path / "a.csv", {"Training": 7})
    write_fer2013(tmp_path / "a.csv.gz", {"Training": 7}, gz=True)
    a = read_fer2013_csv(tmp_path / "a.csv")["Training"]
    b = read_fer2013_csv(tmp_path / "a.csv.gz")["Training"]
    assert np.array_equal(a.images, b.images) and np.array_equal(a.targets, b.targets)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (f"9,{GOOD_PIXELS},Training", "line 3: emotion '9' is not an integer in 0..6"),
        (f"x,{GOOD_PIXELS},Training", "line 3: emotion 'x'"),
        ("3,1 2 3,Training", "line 3: 3 pixels, expected 2304"),
        (f"3,{GOOD_PIXELS},Holdout", "line 3: Usage 'Holdout' is not one of"),
        ("3," + " ".join(["300"] * 2304) + ",Training", "line 3: pixel values must lie in 0..255"),
        ("3," + " ".join(["a"] * 2304) + ",Training", "line 3: pixels must be space-separated integers"),
        ("3,Training", "line 3: expected 3 fields"),
    ],
)
def test_malformed_row_names_file_and_line(tmp_path, row, message):
    path = _csv(tmp_path, f"0,{GOOD_PIXELS},Training\n{row}\n")
    with pytest.raises(DataError) as err:
        read_fer2013_csv(path)
    assert str(path) in str(err.value)
    assert message in str(err.value).replace(f"{path}:", "line ")


def test_bad_header_and_missing_and_empty_file(tmp_path):
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("label,image\n1,2\n")
    with pytest.raises(DataError, match=r"wrong.csv:1: header is 'label,image', expected 'emotion,pixels,Usage'"):
        read_fer2013_csv(wrong)
    with pytest.raises(DataError, match="no such file"):
        read_fer2013_csv(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        read_fer2013_csv(empty)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(b"emotion,pixels,Usage\n0,1 2")[:-12])
    with pytest.raises(DataError, match="broken.csv.gz"):
        read_fer2013_csv(broken)


def test_ferplus_votes_become_soft_labels(tmp_path):
    path = tmp_path / "fer2013new.csv"
    path.write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        "Training,fer0.png,4,0,0,1,3,2,0,0,0,0\n"
        "Training,fer1.png,0,0,0,0,0,0,0,2,8,0\n"
    )
    votes = read_ferplus_votes(path)
    assert votes.shape == (2, 10)
    probs, valid = ferplus_soft_labels(votes)
    assert list(valid) == [True, False]
    expected = np.zeros(7)
    expected[FER_LABELS.index("neutral")] = 0.4
    expected[FER_LABELS.index("sad")] = 0.1
    expected[FER_LABELS.index("angry")] = 0.3
    expected[FER_LABELS.index("disgust")] = 0.2
    assert np.allclose(probs[0], expected)


def test_ferplus_bad_count_names_line(tmp_path):
    path = tmp_path / "fer2013new.csv"
    path.write_text(
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
        "Training,fer0.png,4,0,0,1,3,2,0,0,0,0\n"
        "Training,fer1.png,4,0,zero,1,3,2,0,0,0,0\n"
    )
    with pytest.raises(DataError, match=r"fer2013new.csv:3: vote counts must be integers"):
        read_ferplus_votes(path)


def test_image_folder_layout_with_aliases(tmp_path):
    write_image_folder(tmp_path, per_class=2, split="train")
    (tmp_path / "train" / "happy").rename(tmp_path / "train" / "Happiness")
    data = read_image_folder(tmp_path, "train")
    assert len(data) == 14
    assert data.class_counts() == {name: 2 for name in FER_LABELS}
    write_image_folder(tmp_path, per_class=1, split="val")
    via_loader = load_dataset(tmp_path, "Training")
    assert np.array_equal(via_loader.images, data.images)
    assert len(load_dataset(tmp_path, "val")) == 7


def test_image_folder_errors_name_the_path(tmp_path):
    write_image_folder(tmp_path, per_class=1, split="test")
    (tmp_path / "test" / "bored").mkdir()
    with pytest.raises(DataError, match=r"bored: class folder 'bored' is not one of"):
        read_image_folder(tmp_path, "test")
    (tmp_path / "test" / "bored").rmdir()
    (tmp_path / "test" / "sad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken.png: not a readable image"):
        read_image_folder(tmp_path, "test")
    with pytest.raises(DataError, match="no such folder"):
        read_image_folder(tmp_path, "train")


def test_image_folder_without_val_holds_out_part_of_train(tmp_path):
    write_image_folder(tmp_path, per_class=20, split="train")
    write_image_folder(tmp_path, per_class=3, split="test", seed=1)
    train = load_dataset(tmp_path, "Training")
    val = load_dataset(tmp_path, "PublicTest")
    assert len(train) + len(val) == 140 and len(val) == 14
    assert not set(train.rows) & set(val.rows)
    assert val.class_counts() == {name: 2 for name in FER_LABELS}
    assert len(load_dataset(tmp_path, "PrivateTest")) == 21


def test_cache_writers_never_collide(tmp_path):
    # two training runs started together once shared one temporary name and the second one crashed
    from concurrent.futures import ThreadPoolExecutor

    from edgefer.compile.data import save_npz_atomic

    target = tmp_path / "cache" / "fer2013-x.npz"
    arrays = [np.full((200, 48, 48), i, dtype=np.uint8) for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda a: save_npz_atomic(target, images=a), arrays))
    value = int(np.load(target)["images"][0, 0, 0])
    assert value in range(8)
    assert (np.load(target)["images"] == value).all()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_ferplus_majority_keeps_clear_winners_on_fer_classes():
    from edgefer.compile.data import ferplus_majority

    votes = np.array([
        [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],  # neutral wins
        [0, 0, 0, 0, 0, 0, 3, 0, 0, 0],  # fear
        [3, 3, 0, 0, 0, 0, 0, 0, 4, 0],  # unknown wins: dropped
        [5, 5, 0, 0, 0, 0, 0, 0, 0, 0],  # tie: dropped
        [0, 0, 0, 0, 0, 0, 0, 6, 0, 4],  # contempt: dropped
        [0] * 10,                          # no votes
    ])
    targets, valid = ferplus_majority(votes)
    assert list(valid) == [True, True, False, False, False, False]
    assert [FER_LABELS[t] for t in targets[valid]] == ["neutral", "fear"]


def test_rafdb_reader_maps_labels_and_holds_out_a_fixed_stratified_slice(tmp_path):
    from fixtures import write_rafdb

    from edgefer.compile.data import FER_LABELS, dataset_info, rafdb_val_mask

    rows = write_rafdb(tmp_path / "rafdb", per_class=20)
    train, val = load_dataset(tmp_path / "rafdb", "Training"), load_dataset(tmp_path / "rafdb", "val")
    assert len(train) + len(val) == len(rows) and train.images.shape[1:] == (48, 48)
    assert val.class_counts() == {name: 2 for name in FER_LABELS}  # 10 % of each class
    assert not set(train.groups) & set(val.groups)
    # RAF-DB's ids (1 surprise ... 7 neutral) come out as FER2013's label indices
    expected = {name: label for name, _, label in rows}
    for part in (train, val):
        assert [FER_LABELS[t] for t in part.targets] == [expected[g] for g in part.groups]
    # the slice depends on the names alone: shuffled input, the same images held out
    names = np.array([r[0] for r in rows], dtype=object)
    targets = np.array([FER_LABELS.index(r[2]) for r in rows])
    order = np.random.default_rng(3).permutation(len(rows))
    assert set(names[rafdb_val_mask(names, targets)]) == set(names[order][rafdb_val_mask(names[order],
                                                                                          targets[order])])
    assert dataset_info(tmp_path / "rafdb")["name"] == "RAF-DB"
    with pytest.raises(DataError, match="held-out"):
        load_dataset(tmp_path / "rafdb", "PrivateTest")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda lines: lines.__setitem__(2, "train_00002_aligned.jpg,9,x"), r"labels\.csv:3: label_id '9'"),
    (lambda lines: lines.__setitem__(2, "train_00002_aligned.jpg,1,happy"), r"labels\.csv:3: label 'happy' does not"),
    (lambda lines: lines.__setitem__(2, "missing.jpg,1,surprise"), r"labels\.csv:3: .*missing\.jpg: no such file"),
])
def test_rafdb_reader_names_the_bad_line(tmp_path, edit, message):
    from fixtures import write_rafdb

    from edgefer.compile.data import read_rafdb

    write_rafdb(tmp_path / "rafdb", per_class=1)
    lines = (tmp_path / "rafdb" / "labels.csv").read_text().splitlines()
    edit(lines)
    (tmp_path / "rafdb" / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message):
        read_rafdb(tmp_path / "rafdb" / "labels.csv")
