#!/usr/bin/env bash
# Does infra/Containerfile's runtime stage install every shared library the built binaries load?
# The image cannot be built where there is no container engine, so this asks the host's dpkg
# instead (the build host is Debian 12, like the image): the packages that own what `ldd` resolves
# for faasd, faasctl and faas-worker must be among the runtime stage's packages and their
# dependencies (`apt-cache depends --recurse`). It catches a library added to the build (a new
# client, a new -dev package) that the image would lack, which would stop faasd at start.
#
#   infra/k8s/image_libs_check.sh BIN_DIR     (called by validate.sh with build/bin)
# Exits 0 when every library is covered, 1 naming the missing packages, 77 when it cannot tell
# (no binaries yet, or not a Debian 12 host with dpkg and apt-cache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: image_libs_check.sh BIN_DIR}
for b in faasd faasctl faas-worker; do
  [[ -x $bin/$b ]] || { echo "SKIP: no $bin/$b (build first)"; exit 77; }
done
if ! command -v dpkg >/dev/null || ! command -v apt-cache >/dev/null; then
  echo "SKIP: dpkg and apt-cache are needed"
  exit 77
fi
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null ||
  { echo "SKIP: the host is not Debian 12, so its packages say nothing about the image's"; exit 77; }

# The packages the last stage apt-installs (continued lines joined).
runtime=$(awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END{printf "%s", stage}' \
  "$here/../Containerfile" | sed -e ':a' -e '/\\$/N; s/\\\n//; ta' |
  grep -o 'apt-get install [^&]*' | tr ' ' '\n' | grep -v -e '^-' -e '^apt-get$' -e '^install$' |
  grep -v '^$' | sort -u)
[[ -n $runtime ]] || { echo "FAIL: no apt-get install in the Containerfile's last stage"; exit 1; }
mapfile -t runtime_pkgs <<<"$runtime"
for p in "${runtime_pkgs[@]}"; do
  apt-cache show "$p" >/dev/null 2>&1 || { echo "FAIL: no Debian package named $p"; exit 1; }
done
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${runtime_pkgs[@]}" 2>/dev/null | grep -v -e '^ ' -e '^<' | sed 's/:.*//' |
  sort -u)

# Every library the three binaries load, and the package that owns it: one dpkg -S for all
# (Debian 12 merged /lib into /usr/lib, and dpkg knows each file under one of the two names).
declare -A user_of owner_of
for b in faasd faasctl faas-worker; do
  while read -r lib; do
    user_of[$lib]+="$b "
  done < <(ldd "$bin/$b" | awk '/=> \//{print $3}')
done
candidates=()
for lib in "${!user_of[@]}"; do
  real=$(readlink -f "$lib")
  candidates+=("$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}")
done
while IFS= read -r line; do
  path=${line#*: }
  for pkg in ${line%%: *}; do  # "pkg1, pkg2: path" for a path two packages share
    owner_of[$path]=${pkg%,}
    owner_of[$path]=${owner_of[$path]%%:*}
  done
done < <(dpkg -S "${candidates[@]}" 2>/dev/null || true)
missing=()
for lib in "${!user_of[@]}"; do
  real=$(readlink -f "$lib")
  owner=""
  for c in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    owner=${owner_of[$c]:-}
    [[ -n $owner ]] && break
  done
  if [[ -z $owner ]]; then
    echo "FAIL: ${user_of[$lib]% } loads $lib, which no Debian package owns (built from source?)"
    exit 1
  fi
  grep -qxF "$owner" <<<"$closure" || missing+=("$owner (${user_of[$lib]% }: $(basename "$lib"))")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  printf 'FAIL: infra/Containerfile runtime stage lacks %s\n' "${missing[@]}" | sort -u
  exit 1
fi
echo "image libraries: every library of faasd, faasctl and faas-worker is installed" \
  "($(wc -w <<<"$runtime") packages, $(wc -l <<<"$closure") with dependencies)"
