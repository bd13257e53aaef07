#!/usr/bin/env bash
# Install the Debian tools that tests use as real peers, when missing and when we can (root).
set -u
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v tesseract >/dev/null 2>&1 || need+=(tesseract-ocr)
command -v exiftool >/dev/null 2>&1 || need+=(libimage-exiftool-perl)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "test-deps: missing ${need[*]} and not root: the tests that need them will skip" >&2; exit 0; fi
fi
echo "test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
  || echo "test-deps: could not install ${need[*]}: the tests that need them will skip" >&2
exit 0
