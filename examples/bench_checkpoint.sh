#!/bin/sh
# bench_checkpoint.sh - throughput of `nvfp4 quantize --method max` on a large synthetic BF16
# checkpoint, against copying the same file, in the same run.
#
#   examples/bench_checkpoint.sh [BUILD_DIR] [SIZE_MB] [WORK_DIR]
#
# BUILD_DIR defaults to build (needs build/examples/nvfp4), SIZE_MB to 1024, WORK_DIR to a new
# directory under ${TMPDIR:-/tmp}. The checkpoint is 4096x4096 BF16 "layers" (32 MiB each) plus a
# few 1-D tensors, written by python3 with numpy (normal values; MAX's speed does not depend on
# them). Each step runs twice after a warm-up read and the faster run is reported:
#   cp            cp IN COPY (page cache, no sync)
#   cp+sync       cp IN COPY && sync COPY (what a durable copy costs)
#   nvfp4 max     nvfp4 quantize IN OUT --method max (writes through a temporary file, fsyncs,
#                 renames; also computes every layer's error), for --threads 1 and 0 (all CPUs)
# Throughput is input bytes per second. Everything written is deleted at the end unless
# KEEP=1.
set -eu

build=${1:-build}
size_mb=${2:-1024}
nvfp4=$build/examples/nvfp4
[ -x "$nvfp4" ] || { echo "bench_checkpoint: $nvfp4 not found (build first)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench_checkpoint: needs python3 with numpy" >&2; exit 1; }

if [ $# -ge 3 ]; then
    work=$3
    mkdir -p "$work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/nvfp4-bench-XXXXXX")
fi
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT INT TERM

in=$work/model.safetensors
python3 - "$in" "$size_mb" <<'EOF'
import json, struct, sys
import numpy as np
path, size_mb = sys.argv[1], int(sys.argv[2])
rows = cols = 4096
per = rows * cols * 2
n = max(1, (size_mb * 1024 * 1024) // per)
names, hdr, off = [], {"__metadata__": {"format": "pt"}}, 0
for i in range(n):
    name = "model.layers.%d.mlp.up_proj.weight" % i
    hdr[name] = {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [off, off + per]}
    names.append(name)
    off += per
    norm = "model.layers.%d.input_layernorm.weight" % i
    hdr[norm] = {"dtype": "BF16", "shape": [cols], "data_offsets": [off, off + 2 * cols]}
    off += 2 * cols
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
rng = np.random.default_rng(0)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for i in range(n):
        x = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).view(np.uint32)
        bf = ((x + 0x7FFF + ((x >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        f.write(bf.tobytes())
        f.write(np.full(cols, 0x3F80, np.uint16).tobytes())  # 1.0
EOF

bytes=$(stat -c %s "$in")
now() { date +%s.%N; }
best() { # best COMMAND...: prints the faster of two timed runs, in seconds
    b=""
    for _ in 1 2; do
        rm -f "$work/copy" "$work/out.safetensors"
        t0=$(now)
        "$@" >/dev/null
        t1=$(now)
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}
cat "$in" >/dev/null  # warm the page cache: every step reads from memory

t_cp=$(best cp "$in" "$work/copy")
t_cps=$(best sh -c "cp '$in' '$work/copy' && sync '$work/copy'")
t_q1=$(best "$nvfp4" quantize "$in" "$work/out.safetensors" --method max --threads 1 --no-progress --quiet)
t_q0=$(best "$nvfp4" quantize "$in" "$work/out.safetensors" --method max --threads 0 --no-progress --quiet)
out_bytes=$(stat -c %s "$work/out.safetensors")

rate() { echo "scale=3; $bytes / $1 / 1000000000" | bc -l; }
echo "input: $in, $bytes bytes (BF16, $(grep -c ^processor /proc/cpuinfo) CPUs), output $out_bytes bytes"
printf '%-34s %9s %10s\n' "step" "seconds" "GB/s in"
printf '%-34s %9.3f %10.3f\n' "cp" "$t_cp" "$(rate "$t_cp")"
printf '%-34s %9.3f %10.3f\n' "cp + sync" "$t_cps" "$(rate "$t_cps")"
printf '%-34s %9.3f %10.3f\n' "nvfp4 quantize --method max -j1" "$t_q1" "$(rate "$t_q1")"
printf '%-34s %9.3f %10.3f\n' "nvfp4 quantize --method max -j0" "$t_q0" "$(rate "$t_q0")"
