#!/usr/bin/env bash
# Builds the local images Baton's tests and pods use, since no registry can be
# reached: baton/busybox (a shell and the busybox applets) and baton/pause (the
# infra container that holds a pod's network namespace). Both are made with
# `docker import` from Debian's busybox-static. Idempotent: an image already
# built from the same busybox binary is left alone; --force rebuilds.
set -euo pipefail
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "build-images: $busybox not found (apt-get install busybox-static)" >&2; exit 2; }
ldd_out=$(ldd "$busybox" 2>&1 || true)
if ! grep -q "not a dynamic" <<<"$ldd_out"; then
  echo "build-images: $busybox is not statically linked (install busybox-static)" >&2; exit 2
fi
docker info >/dev/null 2>&1 || { echo "build-images: no Docker daemon answers" >&2; exit 2; }
sum=$(sha256sum "$busybox" | cut -c1-16)
force=${1:-}

build() { # name cmd-json extra-setup
  local name=$1 cmd=$2 setup=$3
  if [ "$force" != "--force" ] && [ "$(docker image inspect -f '{{index .Config.Labels "baton.busybox"}}' "$name" 2>/dev/null)" = "$sum" ]; then
    echo "build-images: $name is up to date"; return
  fi
  local root; root=$(mktemp -d)
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var/www}
  cp "$busybox" "$root/bin/busybox"
  (cd "$root/bin" && for a in $(./busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$a"; done)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  eval "$setup"
  tar -C "$root" -c . | docker import \
    --change "CMD $cmd" \
    --change "ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin" \
    --change "LABEL baton.busybox=$sum" \
    - "$name" >/dev/null
  rm -rf "$root"
  echo "build-images: built $name"
}

build baton/busybox:latest '["/bin/sh"]' ':'
# The infra container does nothing but hold the namespaces until told to stop.
build baton/pause:latest '["/pause"]' 'printf "#!/bin/sh\ntrap \"exit 0\" TERM INT\nwhile :; do sleep 86400 & wait \$!; done\n" >"$root/pause"; chmod 755 "$root/pause"'
