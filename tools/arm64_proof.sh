#!/usr/bin/env bash
# The Raspberry Pi install proof, on this x86_64 machine: build the rpi bundle, unpack it into a Debian bookworm
# arm64 root (Raspberry Pi OS bookworm's userland: Python 3.11, glibc 2.36) run under qemu-user-static, install it
# there with the network cut off, run the monitor on the demo and analyze a real photo, and check that the int8
# model outputs are bit-identical to the x86 ones.
#
# Why emulation and these settings (see ../shared/notes-arm64.md): qemu's default CPU ("max") advertises SVE and
# XNNPACK's int8 kernels then give wrong answers, so QEMU_CPU=cortex-a76 with a matching fake Pi 5 /proc/cpuinfo
# (LiteRT's cpuinfo crashes on the host's Intel one); a guest segfault can leave qemu hung, so everything inside
# runs under `timeout -s KILL` and `unshare --kill-child`. The clean root is cached as a tarball (about 60 MB,
# ~5-10 min to build) under ~/.cache/edgefer/arm64/, never in the repo. Needs root, binfmt_misc and, for the first
# build only, the Debian mirror and PyPI.
#
# Usage: tools/arm64_proof.sh [all|root]      (env: FRAMES=60 WORK=/tmp/edgefer-arm64 LIMIT_S=1500)
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${EDGEFER_ARM64_CACHE:-$HOME/.cache/edgefer/arm64}
WORK=${WORK:-/tmp/edgefer-arm64}
FRAMES=${FRAMES:-60}
LIMIT_S=${LIMIT_S:-1500}
VENV_BIN=${VENV_BIN:-$REPO/.venv/bin}
TARBALL=$CACHE/bookworm-arm64.tar.zst
WHEELS=$CACHE/wheels-rpi
export PATH=$VENV_BIN:$PATH

say() { printf '[arm64-proof %(%H:%M:%S)T] %s\n' -1 "$*"; }

host_tools() {
    local missing=()
    for tool in debootstrap:debootstrap qemu-aarch64-static:qemu-user-static update-binfmts:binfmt-support \
                zstd:zstd unshare:util-linux; do
        command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
    done
    if ((${#missing[@]})); then
        say "installing ${missing[*]}"
        apt-get update -q && apt-get install -y -q "${missing[@]}"
    fi
    # No systemd here: binfmt must be (re-)enabled after a machine restart. F flag: no qemu copy in the root.
    update-binfmts --enable qemu-aarch64 2>/dev/null || true
    update-binfmts --display qemu-aarch64 | grep -q enabled || { echo "qemu-aarch64 binfmt is not enabled" >&2; exit 1; }
}

fake_cpuinfo() {  # $1 = root; Pi 5 (cortex-a76) and Pi 4 (cortex-a72), 2 processors like this host
    local d=$1/usr/local/share/fake-cpuinfo i
    mkdir -p "$d"
    { for i in 0 1; do printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' $i; done
      printf 'Revision\t: c04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n'; } > "$d/pi5"
    { for i in 0 1; do printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' $i; done
      printf 'Revision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n'; } > "$d/pi4"
}

build_root() {
    if [[ -s $TARBALL ]]; then say "cached root: $TARBALL ($(du -h "$TARBALL" | cut -f1))"; return; fi
    local base=$WORK/base mirror t0=$SECONDS
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rm -rf "$base" && mkdir -p "$base" "$CACHE"
    say "debootstrap bookworm arm64 (minbase + python3-venv) from $mirror: about 5-10 min"
    timeout -s KILL 1800 debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip \
        bookworm "$base" "$mirror" > "$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    fake_cpuinfo "$base"
    rm -f "$base"/var/cache/apt/archives/*.deb && rm -rf "$base"/var/lib/apt/lists/* && : > "$base/etc/resolv.conf"
    tar -C "$base" --numeric-owner --xattrs --acls -I 'zstd -T0 -12' -cf "$TARBALL.part" . && mv "$TARBALL.part" "$TARBALL"
    rm -rf "$base"
    say "root cached: $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $((SECONDS - t0)) s"
}

build_bundle() {
    mkdir -p "$WORK" "$WHEELS"
    say "bundle: edgefer bundle --board rpi (wheels cached in $WHEELS)"
    edgefer bundle --board rpi --wheelhouse "$WHEELS" --out "$WORK/edgefer-rpi.tar.gz"
    say "bundle: $(du -h "$WORK/edgefer-rpi.tar.gz" | cut -f1)"
}

x86_reference() {
    say "x86 reference outputs"
    "$VENV_BIN/python" "$REPO/tools/arm64_outputs.py" write-crops "$WORK/crops.npz"
    "$VENV_BIN/python" "$REPO/tools/arm64_outputs.py" outputs "$WORK/crops.npz" > "$WORK/x86-outputs.json"
    (cd "$WORK" && edgefer analyze --json grace_hopper) > "$WORK/x86-analyze.json"
}

run_inside() {
    local root=$WORK/root t0=$SECONDS
    rm -rf "$root" && mkdir -p "$root"
    tar -C "$root" --numeric-owner --xattrs --acls -I zstd -xpf "$TARBALL"
    mkdir -p "$root/proof"
    cp "$WORK/edgefer-rpi.tar.gz" "$WORK/crops.npz" "$REPO/tools/arm64_outputs.py" "$root/proof/"
    cat > "$root/proof/e2e.sh" <<EOF
set -eu
cd /proof
python3 -c 'import socket
try:
    socket.create_connection(("pypi.org", 443), timeout=3); print("NETWORK REACHABLE"); raise SystemExit(1)
except OSError as exc: print("network cut off:", exc)'
t=\$(date +%s); tar xzf edgefer-rpi.tar.gz
sh edgefer-rpi/install.sh --no-systemd
echo "install took \$((\$(date +%s) - t)) s"
B=/opt/edgefer/venv/bin
t=\$(date +%s); \$B/edgefer run --source demo --max-frames $FRAMES 2>&1 | tail -5
echo "run took \$((\$(date +%s) - t)) s"
\$B/edgefer analyze --json grace_hopper > /proof/arm64-analyze.json
\$B/python /proof/arm64_outputs.py outputs /proof/crops.npz --model /opt/edgefer/models/fer-student.tflite \
    > /proof/arm64-outputs.json
\$B/python -c 'import platform, sys; print("inside:", platform.machine(), sys.version.split()[0])'
EOF
    say "offline install + run inside the arm64 root (QEMU_CPU=cortex-a76, fake Pi 5 cpuinfo), limit ${LIMIT_S}s"
    timeout -s KILL "$LIMIT_S" unshare --kill-child --net --mount --pid --fork --mount-proc="$root/proc" bash -c "
        mount --rbind /sys $root/sys &&
        mount --bind $root/usr/local/share/fake-cpuinfo/pi5 $root/proc/cpuinfo &&
        chroot $root /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 QEMU_CPU=cortex-a76 \
            /bin/bash /proof/e2e.sh" 2>&1 | tee "$WORK/inside.log"
    local rc=${PIPESTATUS[0]}
    say "inside: exit $rc after $((SECONDS - t0)) s"
    ((rc == 0)) || exit "$rc"
    cp "$root/proof/arm64-outputs.json" "$root/proof/arm64-analyze.json" "$WORK/"
}

compare() {
    "$VENV_BIN/python" "$REPO/tools/arm64_outputs.py" compare "$WORK/x86-outputs.json" "$WORK/arm64-outputs.json" \
        "$WORK/x86-analyze.json" "$WORK/arm64-analyze.json"
}

main() {
    local t0=$SECONDS
    [[ $(id -u) == 0 ]] || { echo "needs root (debootstrap, chroot, unshare)" >&2; exit 1; }
    mkdir -p "$WORK" "$CACHE"
    host_tools
    build_root
    [[ ${1:-all} == root ]] && return
    build_bundle
    x86_reference
    run_inside
    compare
    say "PASSED in $((SECONDS - t0)) s"
}

main "$@"
