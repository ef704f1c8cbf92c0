#!/usr/bin/env bash
# Uninstall PneumoScan (this script is installed as <prefix>/lib/pneumoscan/uninstall.sh).
# The audit log and the other per-user data are kept unless --purge is given. See docs/install.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: uninstall.sh [--prefix DIR] [--purge]

  --prefix DIR   the prefix given to install.sh (default: the one this script is installed in)
  --purge        also delete the data of the user running this: the audit log, models from the
                 feed, logs and settings (other accounts' data is never touched)

Without --purge the audit log (audit.sqlite) and the rest of the per-user data stay where they are.
EOF
}

die() { echo "uninstall.sh: $*" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$(dirname "$(dirname "$here")")"
purge=0
while (($#)); do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

app="$prefix/lib/pneumoscan"
[[ -x "$app/pneumo-desktop" && -d "$app/_internal" ]] || die "no PneumoScan install in $app"

# Ask the app where its data is (the admin config may have moved it) before the app is gone.
where="$("$app/pneumo-desktop" self-test --paths 2>/dev/null || true)"
field() { printf '%s\n' "$where" | sed -n "s/^$1: //p" | head -n 1; }
data_dir="$(field data_dir)" settings="$(field user_settings)"

if [[ "$(readlink "$prefix/bin/pneumo-desktop" 2>/dev/null)" == "$app/pneumo-desktop" ]]; then
    rm -f "$prefix/bin/pneumo-desktop"
fi
desktop="$prefix/share/applications/pneumoscan.desktop"
if [[ -f "$desktop" ]] && grep -qF "$app/pneumo-desktop" "$desktop"; then
    rm -f "$desktop"
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
fi
rm -rf "$app"
echo "Removed PneumoScan from $app"

if ((purge)); then
    for target in "$data_dir" "$settings"; do
        # never a path that is empty, relative, the root or a home folder itself
        if [[ "$target" == /?*/* && "$target" != "$HOME" && -e "$target" ]]; then
            rm -rf "$target"
            echo "Deleted $target"
        fi
    done
    [[ -n "$settings" ]] && rmdir "$(dirname "$settings")" 2>/dev/null || true
elif [[ -n "$data_dir" ]]; then
    echo "Kept the audit log and data in $data_dir (delete it yourself, or run with --purge)"
fi
