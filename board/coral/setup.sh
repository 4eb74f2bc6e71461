#!/bin/sh
# Coral USB Accelerator on a Raspberry Pi (bookworm 64-bit): the Edge TPU runtime (libedgetpu.so.1, which the
# edgetpu backend loads through ai-edge-litert's load_delegate), the udev rule, and the edgefer user's group.
# Needs the network once (Coral's apt repository); run as root. The std runtime runs the TPU at its reduced clock
# (cooler in a hot car); install libedgetpu1-max instead for full speed.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if ! dpkg -s libedgetpu1-std >/dev/null 2>&1 && ! dpkg -s libedgetpu1-max >/dev/null 2>&1; then
    install -d /etc/apt/keyrings
    curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor -o /etc/apt/keyrings/coral.gpg
    echo "deb [signed-by=/etc/apt/keyrings/coral.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
        > /etc/apt/sources.list.d/coral-edgetpu.list
    apt-get update && apt-get install -y libedgetpu1-std
fi
install -m 0644 "$HERE/99-edgetpu-accelerator.rules" /etc/udev/rules.d/99-edgetpu-accelerator.rules
udevadm control --reload-rules && udevadm trigger || true
getent group plugdev >/dev/null || groupadd --system plugdev
id edgefer >/dev/null 2>&1 && usermod -aG plugdev edgefer
echo "Edge TPU runtime and udev rule installed; replug the accelerator. Check: edgefer predict --backend edgetpu --model /opt/edgefer/models/fer-student_edgetpu.tflite"
