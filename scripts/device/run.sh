#!/usr/bin/env bash
# The GPU check of the webgpu backend, in one command (under 8 minutes), on a Linux x86-64 GPU machine with
# no network: it needs only the repository, .device/ from scripts/device/prepare.sh, and for the PyTorch
# side python3 with torch. Results go to one JSON file, results.json, in the folder given (default $OUT):
#
#   1. parity: the fixture BERTs' hidden states, logits, loss and gradients on webgpu against the PyTorch
#      reference (scripts/device/parity.ts), within 1e-4;
#   2. `topoprobe bench --backend webgpu` training steps of bert-base and bert-large (B=32, T=128), and
#      the matrix products alone (--gemm);
#   3. the same steps in PyTorch on the same GPU (scripts/bench_torch.py --device cuda), fp32 with TF32 off
#      (the same precision) and with TF32 on, for reference;
#   and the ratios of webgpu's throughput to PyTorch's.
#
#   scripts/device/run.sh [out-folder] [--smoke]        (PYTHON names the interpreter with torch; default python3)
# On the `device` tool (the .device folder carried):  scripts/device/run.sh "$OUT"
# --smoke runs every step with tiny models and PyTorch on the CPU: a check of the script itself on a machine
# without a GPU (with scripts/swiftshader.sh's adapter).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-/tmp/topoprobe-device}}"
smoke=0
[ "${2:-}" = --smoke ] && smoke=1
mkdir -p "$out"
log="$out/log.txt"
raw="$(mktemp -d)"
say() { echo "[$(date -u +%T)] $*" | tee -a "$log" >&2; }
D=.device
[ -f "$D/node.xz" ] || { say "no $D/node.xz: run scripts/device/prepare.sh first (and carry .device)"; exit 2; }

say "unpacking Node, dawn.node and the Vulkan loader ($(tr '\n' ';' < "$D/VERSION"))"
bin="$(mktemp -d)"
xz -dc "$D/node.xz" > "$bin/node" && chmod +x "$bin/node"
mkdir -p "$D/node_modules/webgpu/dist/linux-x64"
[ -f "$D/node_modules/webgpu/dist/linux-x64/dawn.node" ] || xz -dc "$D/dawn.node.xz" > "$D/node_modules/webgpu/dist/linux-x64/dawn.node"
rm -rf "$D/app" && tar -C "$D" -xJf "$D/app.tar.xz"
if [ "$smoke" = 0 ] && ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
  for f in "$D"/deb/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
# The NVIDIA driver's Vulkan ICD, where the container has it but the loader does not find it.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
done
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
node="$bin/node"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$log" 2>&1 || true

# step name, time limit (s), output file, command...
step() {
  local name="$1" limit="$2" file="$3"
  shift 3
  say "$name"
  local t0=$SECONDS
  timeout "$limit" "$@" > "$raw/$file" 2>> "$log"
  local rc=$?
  say "$name: exit $rc after $((SECONDS - t0)) s"
  echo "$rc" > "$raw/$file.rc"
}
base=(--layers 12 --hidden 768 --heads 12 --inter 3072 --batch 32 --seq 128)
large=(--layers 24 --hidden 1024 --heads 16 --inter 4096 --batch 32 --seq 128)
device=cuda
if [ "$smoke" = 1 ]; then
  base=(--layers 1 --hidden 32 --heads 2 --inter 64 --batch 2 --seq 8 --vocab 200)
  large=(--layers 2 --hidden 32 --heads 2 --inter 64 --batch 2 --seq 8 --vocab 200)
  device=cpu
fi
cli=("$node" "$D/app/entry.js" --log-level info)

step "parity on webgpu" 120 parity.json "$node" "$D/app/parity.js" test/fixtures
[ "$smoke" = 1 ] || step "webgpu gemm" 90 webgpu-gemm.json "${cli[@]}" bench --backend webgpu --gemm
step "webgpu bert-base step" 120 webgpu-base.json "${cli[@]}" bench --backend webgpu "${base[@]}" --warmup 2 --steps 5
step "webgpu bert-large step" 150 webgpu-large.json "${cli[@]}" bench --backend webgpu "${large[@]}" --warmup 2 --steps 5
py=(env PYTHONUNBUFFERED=1 "${PYTHON:-python3}" scripts/bench_torch.py --device "$device")
step "pytorch bert-base fp32" 60 torch-base-fp32.json "${py[@]}" --tf32 off "${base[@]}" --warmup 3 --steps 10
step "pytorch bert-large fp32" 60 torch-large-fp32.json "${py[@]}" --tf32 off "${large[@]}" --warmup 3 --steps 10
step "pytorch bert-large tf32" 60 torch-large-tf32.json "${py[@]}" --tf32 on "${large[@]}" --warmup 3 --steps 10
[ "$smoke" = 1 ] || step "pytorch gemm fp32" 30 torch-gemm-fp32.json "${py[@]}" --tf32 off --gemm

say "summary"
"${PYTHON:-python3}" - "$raw" "$out/results.json" <<'PY'
import json, os, sys
raw, dest = sys.argv[1], sys.argv[2]
res = {}
for f in sorted(os.listdir(raw)):
    if not f.endswith(".json"):
        continue
    key = f[:-5]
    rc = int(open(os.path.join(raw, f + ".rc")).read())
    text = open(os.path.join(raw, f)).read().strip().splitlines()
    try:
        res[key] = json.loads(text[-1]) if text else None
    except json.JSONDecodeError:
        res[key] = {"unparsed": text[-5:]}
    if rc != 0:
        res[key] = {"exit": rc, "result": res[key]}
def ms(k):
    v = res.get(k)
    return v.get("ms_per_step") if isinstance(v, dict) else None
ratios = {}
for size in ("base", "large"):
    w, t = ms(f"webgpu-{size}"), ms(f"torch-{size}-fp32")
    if w and t:
        ratios[f"bert-{size} webgpu / pytorch fp32 throughput"] = t / w
w, t = ms("webgpu-large"), ms("torch-large-tf32")
if w and t:
    ratios["bert-large webgpu / pytorch tf32 throughput"] = t / w
res["ratios"] = ratios
json.dump(res, open(dest, "w"), indent=2)
print(json.dumps(ratios))
PY
say "done: $out/results.json"
