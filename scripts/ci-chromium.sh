#!/bin/sh
# Installs what the dashboard's end-to-end tests and `tomaranai report --format pdf` need, from
# Debian's own packages: headless Chromium (driven by playwright-core; no browser download),
# poppler-utils (pdftotext reads the PDF back) and a Japanese font (IPA Gothic) so Japanese text
# renders in screenshots and PDFs. Idempotent: does nothing when all are present.
set -eu
missing=""
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"
[ -d /usr/share/fonts/opentype/ipafont-gothic ] || missing="$missing fonts-ipafont-gothic"
if [ -z "$missing" ]; then
  echo "ci-chromium: chromium, poppler-utils and a Japanese font are installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ci-chromium: installing$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
/usr/bin/chromium --version
