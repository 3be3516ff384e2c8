#!/bin/sh
# Screenshots of a share page with headless Chromium: desktop (1280 wide) and phone (390 wide),
# each in the light and the dark colour scheme.
#
#   docs/screenshots.sh BASE_URL SHARE_ID [OUT_DIR]
#   docs/screenshots.sh http://127.0.0.1:8080 FixLong1 docs
#
# Writes share-{desktop,phone}-{light,dark}.png into OUT_DIR (default: docs).
set -eu

if [ $# -lt 2 ]; then
  echo "usage: $0 BASE_URL SHARE_ID [OUT_DIR]" >&2
  exit 2
fi
url="${1%/}/share/$2"
out="${3:-docs}"
mkdir -p "$out"
chromium_bin="${CHROMIUM:-chromium}"

shot() { # name width height scheme
  profile=$(mktemp -d)
  # Blink's preferredColorScheme: 0 is dark, 1 is light. --force-dark-mode alone also flips
  # the UI; the Blink setting is what pages see as prefers-color-scheme.
  if [ "$4" = dark ]; then
    scheme="--force-dark-mode --blink-settings=preferredColorScheme=0"
  else
    scheme="--blink-settings=preferredColorScheme=1"
  fi
  # shellcheck disable=SC2086 # $scheme is two flags
  "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --window-size="$2,$3" $scheme \
    --virtual-time-budget=3000 --screenshot="$out/$1.png" "$url" >/dev/null 2>&1
  rm -rf "$profile"
  echo "$out/$1.png"
}

shot share-desktop-light 1280 1800 light
shot share-desktop-dark 1280 1800 dark
shot share-phone-light 390 1600 light
shot share-phone-dark 390 1600 dark
