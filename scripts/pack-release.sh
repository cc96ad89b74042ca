#!/usr/bin/env bash
# Packs a self-contained Baton release: the compiled code (dist/src), the
# production node_modules, bin/, proto/, docs/ and deploy/, in one tarball
# that deploy/install.sh installs on a VM with no npm registry in reach.
#
#   scripts/pack-release.sh [--out DIR] [--no-build]
#
# Prints the tarball's path: DIR/baton-VERSION-linux-ARCH.tar.gz (default
# DIR: ./release). The tarball holds native modules (LevelDB, CRC-32C) for
# the architecture it was packed on (x64 or arm64): pack on the same one as
# the VMs. It needs Node.js, npm and the npm registry (or npm's cache) here.
set -euo pipefail
cd "$(dirname "$0")/.."

out=release
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pack-release: unknown argument: $1" >&2; exit 2 ;;
  esac
done

version=$(node -p "require('./package.json').version")
arch=$(node -p 'process.arch')
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
name="baton-${version}-linux-${arch}"

if [ "$build" = 1 ]; then
  echo "pack-release: building" >&2
  npx tsc -p tsconfig.json
fi
[ -f dist/src/cli/main.js ] || { echo "pack-release: dist/src is missing (run npm run build)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/dist"
cp -R dist/src "$root/dist/src"
cp -R bin proto docs deploy "$root/"
cp package.json package-lock.json README.md "$root/"
printf '%s %s\n' "$version" "$commit" > "$root/RELEASE"

# Production dependencies only, exactly as locked. Install scripts are not
# run: LevelDB (classic-level) loads its bundled prebuilt binary, CRC-32C
# comes as a per-platform package, and ssh2's optional cpu-features (never
# used by Baton) stays unbuilt.
echo "pack-release: installing production dependencies" >&2
(cd "$root" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)

# The release must run on its own, without this checkout's node_modules.
got=$(cd "$stage" && node "$root/bin/baton.js" --version)
[ "$got" = "$version" ] || { echo "pack-release: the packed baton says version '$got', expected '$version'" >&2; exit 1; }
(cd "$stage" && node -e "require('$root/node_modules/classic-level'); require('$root/node_modules/@node-rs/crc32')") ||
  { echo "pack-release: a native module does not load from the release" >&2; exit 1; }

mkdir -p "$out"
tarball="$(cd "$out" && pwd)/$name.tar.gz"
tar -C "$stage" -czf "$tarball" "$name"
echo "pack-release: $(du -h "$tarball" | cut -f1) $tarball ($version, commit $commit, $arch)" >&2
echo "$tarball"
