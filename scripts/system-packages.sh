#!/usr/bin/env bash
# Installs the Debian packages the test suite drives, as root or through sudo, only when missing.
# Add a package here as "<binary>:<debian package>".
set -euo pipefail
wanted=("/usr/bin/chromium:chromium" "/usr/bin/jq:jq" "/usr/bin/git-lfs:git-lfs")
missing=()
for entry in "${wanted[@]}"; do
  [ -x "${entry%%:*}" ] || missing+=("${entry#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "warning: cannot install ${missing[*]} (not root, no sudo); the tests that need them skip (and fail on CI)" >&2
  exit 0
fi
command -v apt-get >/dev/null || { echo "warning: no apt-get to install ${missing[*]}" >&2; exit 0; }
if ! { "${as_root[@]}" apt-get update -qq \
       && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
  echo "warning: could not install ${missing[*]}; the tests that need them skip (and fail on CI)" >&2
fi
