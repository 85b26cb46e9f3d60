#!/bin/bash
# Install the Debian packages listed in the given file(s) when missing (root only).
# One package per line; '#' comments allowed. Fast no-op when everything is present.
set -euo pipefail
mapfile -t wanted < <(cat "$@" | sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "apt-install: not root; missing Debian packages (lab/e2e tests will be deselected): ${missing[*]}" >&2
  exit 0
fi
echo "apt-install: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Packages wanted for their tools only, never as a running daemon on this machine: masked before they are
# installed, so their postinst does not start them (Rspamd's default configuration would fetch its maps
# from the internet: nothing in the suite may phone home; the tests use rspamadm, lab hosts run Rspamd).
for unit in rspamd.service; do
  if [[ " ${missing[*]} " == *" ${unit%.service} "* ]]; then systemctl mask -q "$unit"; fi
done
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
