# Shared by tools/test and tools/demo: the Debian packages the build needs, and a function that
# installs the missing ones (as root) or prints the exact apt-get line (otherwise).
# shellcheck shell=bash

MCV_BUILD_PACKAGES=(
  cmake ninja-build g++ pkg-config ccache
  googletest libgtest-dev
  nlohmann-json3-dev libeigen3-dev libcli11-dev libstb-dev
  libjpeg62-turbo-dev libpng-dev zlib1g-dev
)
MCV_TEST_PACKAGES=(clang libclang-rt-14-dev)

# mcv_ensure_packages PKG... : returns 0 when all are installed (installing them if root).
mcv_ensure_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "mambacv: missing Debian packages: ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || {
      echo "mambacv: apt-get install failed" >&2; return 1; }
  else
    echo "mambacv: run as root:  apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}
