#!/usr/bin/env bash
# What tests/test_serve_ui.py needs besides Python packages: Debian's Chromium (Playwright drives it at
# /usr/bin/chromium, so no browser is downloaded by Playwright) and a CJK font, without which Hangul in the
# screenshots renders as boxes. Installs them with apt-get only when one is missing; exits 0 when both are there.
# Runs as root (CI) or through sudo when available.
set -euo pipefail

missing=()
if [ -x /usr/bin/chromium ]; then
  echo "install_browser: /usr/bin/chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
else
  echo "install_browser: /usr/bin/chromium missing"
  missing+=(chromium)
fi

# fc-list comes with fontconfig (a Chromium dependency); without it, look for the font files themselves
has_cjk_font() {
  if command -v fc-list >/dev/null 2>&1; then
    [ -n "$(fc-list :lang=ko family 2>/dev/null | head -n 1)" ]
  else
    [ -n "$(find /usr/share/fonts /usr/local/share/fonts -iname '*cjk*' -print -quit 2>/dev/null)" ]
  fi
}
if has_cjk_font; then
  echo "install_browser: a font with Korean glyphs is present"
else
  echo "install_browser: no font with Korean glyphs"
  missing+=(fonts-noto-cjk)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install_browser: nothing to install"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "install_browser: need root to install ${missing[*]} (run as root, or install sudo)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install_browser: apt-get update"
"${sudo[@]}" apt-get update -q
echo "install_browser: apt-get install -y ${missing[*]}"
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"

if [ ! -x /usr/bin/chromium ]; then
  echo "install_browser: /usr/bin/chromium still missing after installing chromium" >&2
  exit 1
fi
if ! has_cjk_font; then
  echo "install_browser: still no font with Korean glyphs after installing fonts-noto-cjk" >&2
  exit 1
fi
echo "install_browser: done"
