#!/usr/bin/env bash
# A WebGPU adapter on a machine with no GPU: SwiftShader, the CPU implementation of Vulkan that Chromium
# ships, taken from Debian's chromium-common package (26 MB; unpacked, not installed: none of Chromium's
# dependencies are needed) together with the Vulkan loader it ships. Far slower than the blas backend: for
# testing the webgpu backend's correctness (CI does), never for training.
#
#   eval "$(scripts/swiftshader.sh)"      # prints the two variables to export
#
# The files go to ${TOPOPROBE_SWIFTSHADER_DIR:-~/.cache/topoprobe/swiftshader}; an existing copy is reused.
set -euo pipefail
dir="${TOPOPROBE_SWIFTSHADER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/topoprobe/swiftshader}"
if ! [ -f "$dir/vk_swiftshader_icd.json" ] || ! [ -f "$dir/libvk_swiftshader.so" ] || ! [ -f "$dir/libvulkan.so.1" ]; then
  command -v apt-get >/dev/null || { echo "swiftshader.sh: needs apt-get (Debian or Ubuntu)" >&2; exit 1; }
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get download chromium-common >/dev/null 2>&1) || {
    apt-get update -qq >/dev/null 2>&1 || true
    (cd "$work" && apt-get download chromium-common >/dev/null 2>&1) || { echo "swiftshader.sh: apt-get download chromium-common failed" >&2; exit 1; }
  }
  dpkg-deb -x "$work"/chromium-common_*.deb "$work/x"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  for f in libvk_swiftshader.so vk_swiftshader_icd.json libvulkan.so.1; do
    cp "$work/x/usr/lib/chromium/$f" "$dir.tmp/$f" || { echo "swiftshader.sh: chromium-common has no $f" >&2; exit 1; }
  done
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi
echo "export VK_ICD_FILENAMES=$dir/vk_swiftshader_icd.json"
echo "export LD_LIBRARY_PATH=$dir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
