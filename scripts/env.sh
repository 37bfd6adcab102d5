# Sourced by the scripts: puts the project-local and cargo-installed tools first on PATH.
# shellcheck shell=bash
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export PATH="$ROOT/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"
export CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
