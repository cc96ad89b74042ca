#!/usr/bin/env bash
# Installs (or upgrades) Baton on a Debian or Ubuntu VM, as a systemd service.
#
#   install.sh --role master --tarball baton-VERSION-linux-ARCH.tar.gz \
#              --id 1 --init --advertise 10.0.0.1:7001
#   install.sh --role master --tarball ... --id 2 --advertise 10.0.0.2:7001 \
#              --join 10.0.0.1:7001 --token MASTER_TOKEN
#   install.sh --role node --tarball ... --masters 10.0.0.1:7001,10.0.0.2:7001,10.0.0.3:7001 \
#              --token NODE_TOKEN [--address 10.0.1.11] [--labels zone=a]
#   install.sh --role master|node --tarball NEW.tar.gz      # upgrade: keeps the config
#
# What it does: installs Node.js (the distribution's nodejs package; 20.19
# or newer is required) and, for nodes, docker.io and iptables; unpacks the
# release tarball (scripts/pack-release.sh) into /opt/baton/releases/ and
# points /opt/baton/current and /usr/local/bin/baton at it; writes
# /etc/baton/ROLE.yaml from the flags (only when settings are given or the
# file is missing, so an upgrade keeps it); installs, enables and
# (re)starts baton-ROLE.service. Running it again is an upgrade.
#
# Options:
#   --role master|node     what this VM runs (required)
#   --tarball FILE         the release to install (required unless one is installed)
#   --dry-run              print what would be done, change nothing
#   --root DIR             install under DIR instead of / (for tests): no
#                          apt-get, user, systemctl or modprobe
#   --no-start             install and enable, but do not (re)start the service
#   --keep-releases N      releases kept in /opt/baton/releases (default 3)
# Master settings (written to /etc/baton/master.yaml):
#   --id N                 this master's Raft id (required with --init or --join)
#   --init                 found a new cluster (the first master only)
#   --join HOST:PORT       join the cluster through this master
#   --token TOKEN          the master join token (with --join)
#   --listen HOST:PORT     default 0.0.0.0:7001
#   --advertise HOST:PORT  default: this VM's first IPv4 address, port 7001
#   --data-dir DIR         default /var/lib/baton/master
# Node settings (written to /etc/baton/node.yaml):
#   --masters LIST         master addresses, host:port,... (required)
#   --token TOKEN          the node join token (required)
#   --name NAME            default: the host name, lower-cased
#   --address IP           default: the host's first non-loopback IPv4 address
#   --labels k=v,...  --taints key[=value]:Effect,...
#   --data-dir DIR         default /var/lib/baton-node
# Either role:
#   --set KEY=VALUE        any other setting of `baton master --help` / `baton
#                          node --help`, by its YAML name (e.g. --set logLevel=debug)
set -euo pipefail

MIN_NODE=20.19
prog=$(basename "$0")

die() { echo "$prog: error: $*" >&2; exit 1; }
say() { echo "$prog: $*"; }

role='' tarball='' dry=0 root='' start=1 keep=3
declare -a settings=()   # "key=value", in the order given
token=
given_settings=0

set_setting() { settings+=("$1=$2"); given_settings=1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --role) role=${2:-}; shift 2 ;;
    --tarball) tarball=${2:-}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    --root) root=${2:-}; [ -n "$root" ] || die "--root needs a directory"; shift 2 ;;
    --no-start) start=0; shift ;;
    --keep-releases) keep=${2:-}; shift 2 ;;
    --id) set_setting id "${2:-}"; shift 2 ;;
    --init) set_setting init true; shift ;;
    --join) set_setting join "${2:-}"; shift 2 ;;
    --token) token=${2:-}; given_settings=1; shift 2 ;;
    --listen) set_setting listen "${2:-}"; shift 2 ;;
    --advertise) set_setting advertise "${2:-}"; shift 2 ;;
    --data-dir) set_setting dataDir "${2:-}"; shift 2 ;;
    --masters) set_setting masters "${2:-}"; shift 2 ;;
    --name) set_setting name "${2:-}"; shift 2 ;;
    --address) set_setting address "${2:-}"; shift 2 ;;
    --labels) set_setting labels "${2:-}"; shift 2 ;;
    --taints) set_setting taints "${2:-}"; shift 2 ;;
    --set)
      case "${2:-}" in *=*) ;; *) die "--set expects KEY=VALUE, got '${2:-}'" ;; esac
      set_setting "${2%%=*}" "${2#*=}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see $prog --help)" ;;
  esac
done

case "$role" in master|node) ;; *) die "--role must be master or node" ;; esac
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die "--keep-releases must be a positive number"

# The settings each role's config file may hold: those of `baton master
# --help` / `baton node --help` (src/cli/commands/master.ts, node.ts), and
# init, join and token of the secure bootstrap.
master_keys=" id listen advertise peers dataDir secretsKeyFile join init token insecure pkiDir certTtl logLevel tickMs electionTicks admission snapshotEntries nodeGracePeriodMs podEvictionDelayMs heartbeatPeriodMs clusterCidr nodeCidrMaskSize serviceCidr serviceNodePortRange "
node_keys=" name masters token insecure pkiDir labels taints logLevel syncPeriodMs runtime dataDir listen address proxyMode clusterDomain dnsListen keepProxyRules sharedHost removePodsOnExit "

opt="$root/opt/baton"
etc="$root/etc/baton"
unitdir="$root/etc/systemd/system"
bindir="$root/usr/local/bin"
config="$etc/$role.yaml"
unit="baton-$role.service"

# ---- how things are done (or only said, with --dry-run) ---------------------

run() {
  if [ "$dry" = 1 ]; then echo "+ $*"; return 0; fi
  "$@"
}

# Steps that change the machine itself: not under --root.
host() {
  if [ -n "$root" ]; then echo "skipped (--root): $*"; return 0; fi
  run "$@"
}

# write FILE MODE OWNER: stdin to FILE, atomically.
write_file() {
  local file=$1 mode=$2 owner=$3 content
  content=$(cat)
  if [ "$dry" = 1 ]; then
    echo "+ write $file (mode $mode, owner $owner):"
    # The token is a secret: not on the screen.
    printf '%s\n' "$content" | sed -e "s/^token: .*/token: '<redacted>'/" -e 's/^/    /'
    return 0
  fi
  mkdir -p "$(dirname "$file")"
  local tmp
  tmp=$(mktemp "$file.XXXXXX")
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  if [ -z "$root" ]; then chown "$owner" "$tmp"; fi
  mv -f "$tmp" "$file"
}

# A YAML single-quoted scalar: every value is written as a string (the
# config loader reads numbers, booleans and comma-separated lists from
# strings as from flags).
yaml_quote() { printf "'%s'" "${1//\'/\'\'}"; }

version_ge() { # version_ge A B: A >= B (dotted numbers)
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

node_version() { node -p 'process.versions.node' 2>/dev/null || true; }

first_ipv4() {
  ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}

# ---- checks -----------------------------------------------------------------

if [ -z "$root" ] && [ "$dry" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (or with --dry-run, or --root DIR to install into a directory)"
fi

if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  case "${ID:-}:${ID_LIKE:-}" in
    debian:*|ubuntu:*|*:*debian*) ;;
    *) say "warning: this script knows Debian and Ubuntu; this is ${PRETTY_NAME:-unknown}" ;;
  esac
fi

if [ -n "$tarball" ]; then
  [ -f "$tarball" ] || die "no such tarball: $tarball"
  tar -tzf "$tarball" >/dev/null 2>&1 || die "$tarball is not a gzipped tar file"
  top=$(tar -tzf "$tarball" | awk -F/ 'NR == 1 { print $1 }')
  [[ "$top" =~ ^baton-[^/]+-linux-(x64|arm64)$ ]] ||
    die "$tarball is not a Baton release (made by scripts/pack-release.sh): it starts with '$top'"
  tar -tzf "$tarball" "$top/bin/baton.js" >/dev/null 2>&1 || die "$tarball has no $top/bin/baton.js"
  release_arch=${top##*-}
elif [ ! -e "$opt/current" ]; then
  die "--tarball is required: Baton is not installed yet (make one with scripts/pack-release.sh)"
fi

# Validate the settings before touching anything.
keys=$master_keys; [ "$role" = node ] && keys=$node_keys
for kv in "${settings[@]}"; do
  k=${kv%%=*}
  case "$keys" in *" $k "*) ;; *) die "--set $k: not a setting of baton $role (known:$keys)" ;; esac
done
get() { # the last value given for a setting
  local kv v=
  for kv in "${settings[@]}"; do [ "${kv%%=*}" = "$1" ] && v=${kv#*=}; done
  printf '%s' "$v"
}
write_config=0
if [ "$given_settings" = 1 ] || [ ! -e "$config" ]; then write_config=1; fi
if [ "$write_config" = 1 ]; then
  if [ "$role" = master ]; then
    [ -n "$(get id)" ] || die "--id is required for a master"
    [[ "$(get id)" =~ ^[1-9][0-9]*$ ]] || die "--id must be a positive integer"
    if [ -n "$(get init)" ] && [ -n "$(get join)" ]; then die "--init and --join exclude each other"; fi
    if [ -z "$(get init)" ] && [ -z "$(get join)" ]; then
      die "a master needs --init (the first master of a new cluster) or --join HOST:PORT --token TOKEN"
    fi
    if [ -n "$(get join)" ] && [ -z "$token" ]; then
      die "--join needs --token (on a master: baton token create --role master)"
    fi
  else
    [ -n "$(get masters)" ] || die "--masters host:port,... is required for a node"
    [ -n "$token" ] || die "--token is required for a node (on a master: baton token create --role node)"
  fi
fi

# ---- packages ---------------------------------------------------------------

export DEBIAN_FRONTEND=noninteractive
have=$(node_version)
packages=()
if [ -z "$have" ] || ! version_ge "$have" "$MIN_NODE"; then packages+=(nodejs); fi
if [ "$role" = node ]; then
  command -v docker >/dev/null 2>&1 || packages+=(docker.io)
  command -v iptables >/dev/null 2>&1 || packages+=(iptables)
fi
if [ "${#packages[@]}" -gt 0 ]; then
  host apt-get update
  host apt-get install -y --no-install-recommends "${packages[@]}"
fi

have=$(node_version)
if [ "$dry" = 1 ] && [ -z "$have" ]; then
  say "(dry run) cannot check the Node.js version: node is not installed yet"
elif [ -z "$have" ]; then
  die "node is not on PATH after installing the nodejs package"
elif ! version_ge "$have" "$MIN_NODE"; then
  die "Baton needs Node.js $MIN_NODE or newer (package.json engines); this machine has $have.
  Debian 13 (trixie) ships nodejs 20.19; Debian 12 (bookworm) and Ubuntu 24.04 LTS ship 18.x,
  which is too old. Use a release whose nodejs is new enough (apt-cache policy nodejs shows it),
  or install a nodejs package >= $MIN_NODE from elsewhere so that 'node' on PATH is new enough,
  then run this again."
else
  say "Node.js $have (>= $MIN_NODE)"
fi
if [ -n "$tarball" ] && [ -n "$have" ]; then
  arch=$(node -p 'process.arch')
  [ "$arch" = "$release_arch" ] || die "$tarball is for $release_arch; this machine is $arch"
fi

# ---- user and release ---------------------------------------------------------

if [ "$role" = master ] && ! getent passwd baton >/dev/null 2>&1; then
  host useradd --system --user-group --home-dir /var/lib/baton --no-create-home \
    --shell /usr/sbin/nologin --comment "Baton master" baton
fi

if [ -n "$tarball" ]; then
  run mkdir -p "$opt/releases"
  staging="$opt/releases/.incoming"
  run rm -rf "$staging"
  run mkdir -p "$staging"
  run tar -xzf "$tarball" -C "$staging" --no-same-owner
  if [ -e "$opt/releases/$top" ]; then
    # The same version again (a rebuilt tarball): the old copy goes once
    # the service runs the new one.
    old="$opt/releases/.replaced-$top-$$"
    run mv "$opt/releases/$top" "$old"
  fi
  run mv "$staging/$top" "$opt/releases/$top"
  run rm -rf "$staging"
  # Switch atomically: a new symlink renamed over the old one.
  run ln -sfn "releases/$top" "$opt/current.new"
  run mv -T "$opt/current.new" "$opt/current"
  say "release $top is $opt/current"
fi
run mkdir -p "$bindir"
run ln -sfn /opt/baton/current/bin/baton.js "$bindir/baton"

# ---- configuration ------------------------------------------------------------

if [ "$write_config" = 1 ]; then
  if [ "$role" = master ]; then
    [ -n "$(get listen)" ] || settings=("listen=0.0.0.0:7001" "${settings[@]}")
    [ -n "$(get dataDir)" ] || settings+=("dataDir=/var/lib/baton/master")
    if [ -z "$(get advertise)" ]; then
      ip4=$(first_ipv4)
      [ -n "$ip4" ] || die "cannot tell this VM's IPv4 address: pass --advertise IP:7001"
      settings+=("advertise=$ip4:7001")
    fi
    owner=root:baton mode=0640
  else
    [ -n "$(get dataDir)" ] || settings+=("dataDir=/var/lib/baton-node")
    [ -n "$(get runtime)" ] || settings+=("runtime=docker")
    # A restart is usually an upgrade: keep Service rules and pod routes
    # while the daemon is away, so running pods keep reaching Services.
    [ -n "$(get keepProxyRules)" ] || settings+=("keepProxyRules=true")
    owner=root:root mode=0600
  fi
  [ -n "$token" ] && settings+=("token=$token")
  {
    echo "# baton $role settings, written by deploy/install.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo "# Every setting of 'baton $role --help' may be set here by its YAML name."
    if [ "$role" = master ]; then
      echo "# init, join and token are acted on only while the data directory is empty."
    fi
    # One line per setting, the last value given winning.
    declare -a lines=()
    seen=" "
    for (( i=${#settings[@]}-1; i>=0; i-- )); do
      k=${settings[i]%%=*}
      case "$seen" in *" $k "*) continue ;; esac
      seen="$seen$k "
      lines[i]="$k: $(yaml_quote "${settings[i]#*=}")"
    done
    for i in "${!settings[@]}"; do [ -n "${lines[i]:-}" ] && echo "${lines[i]}"; done
  } | write_file "$config" "$mode" "$owner"
  say "wrote $config"
else
  say "kept $config"
fi

# ---- the service ----------------------------------------------------------------

unit_src="$opt/current/deploy/systemd/$unit"
if [ "$dry" = 1 ] && [ ! -e "$unit_src" ]; then
  echo "+ install -m 0644 $unit_src $unitdir/$unit"
else
  run install -D -m 0644 "$unit_src" "$unitdir/$unit"
fi

if [ "$role" = node ]; then
  # iptables mode needs bridged traffic to pass through iptables.
  echo br_netfilter | write_file "$root/etc/modules-load.d/baton.conf" 0644 root:root
  host modprobe br_netfilter
  host systemctl enable --now docker.service
fi
host systemctl daemon-reload
host systemctl enable "$unit"
if [ "$start" = 1 ]; then
  host systemctl restart "$unit"
  if [ -z "$root" ] && [ "$dry" = 0 ]; then
    sleep 2
    if ! systemctl is-active --quiet "$unit"; then
      journalctl -u "$unit" -n 20 --no-pager >&2 || true
      die "$unit did not stay up (journalctl -u $unit)"
    fi
  fi
fi

# Older releases beyond --keep-releases, never the current one.
if [ -n "$tarball" ] && [ "$dry" = 0 ]; then
  rm -rf "$opt/releases"/.replaced-* 2>/dev/null || true
  current=$(readlink "$opt/current")
  # shellcheck disable=SC2012
  ls -1t "$opt/releases" | tail -n +"$((keep + 1))" | while read -r old; do
    [ "releases/$old" = "$current" ] || rm -rf "${opt:?}/releases/$old"
  done
fi

say "done: $unit $([ "$start" = 1 ] && echo "(re)started" || echo "installed")"
if [ "$role" = master ]; then
  say "check: baton --server <master>:7001 cluster members   (logs: journalctl -u $unit)"
else
  say "check: baton get nodes   (logs: journalctl -u $unit)"
fi
