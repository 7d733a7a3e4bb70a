#!/usr/bin/env bash
# Make `debian:bookworm-slim` for podman from Debian's own packages, where no registry can be reached.
# Idempotent: does nothing when the image is already there (a registry, if reachable, is never needed).
# Also writes the containers.conf this machine needs (runc, capped ulimits) and prints its path.
# Usage: eval "$(scripts/podman_base.sh)"   -> exports CONTAINERS_CONF
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need=()
for tool in podman buildah mmdebstrap runc; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "Missing: ${need[*]}. Install them (Debian: sudo apt-get install ${need[*]}) and run this again." >&2
    exit 1
  fi
  say "apt-get install ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# crun fails on these hosts ("cgroups in hybrid mode not supported") and podman's default ulimits are
# refused (setrlimit: Operation not permitted).
conf=$PWD/.tools/podman/containers.conf
mkdir -p "$(dirname "$conf")"
cat > "$conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$conf

base=docker.io/library/debian:bookworm-slim
if ! podman image exists "$base"; then
  say "making $base from Debian's packages (mmdebstrap, ~1 min)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  src=/etc/apt/sources.list.d/debian.sources
  if [[ -f $src ]]; then
    main=$(awk '/^URIs:/{print $2}' "$src" | sed -n 1p)
    security=$(awk '/^URIs:/{print $2}' "$src" | sed -n 2p)
  fi
  main=${main:-http://deb.debian.org/debian}
  security=${security:-http://deb.debian.org/debian-security}
  # Local CA certificates (an HTTPS proxy's, for instance) go into the base so the build's pip trusts them.
  mmdebstrap --quiet --variant=minbase \
    --customize-hook='mkdir -p "$1/usr/local/share/ca-certificates"; for c in /usr/local/share/ca-certificates/*.crt; do [ -e "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done; true' \
    bookworm "$work/rootfs.tar" \
    "deb $main bookworm main" "deb $main bookworm-updates main" "deb $security bookworm-security main" >&2
  podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$base" >/dev/null
fi
echo "export CONTAINERS_CONF=$conf"  # for a shell: eval "$(scripts/podman_base.sh)"
