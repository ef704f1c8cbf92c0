#!/usr/bin/env bash
# Install PneumoScan from the unpacked release folder (this script sits beside pneumoscan/).
# Unattended: no question asked; exit code 0 on success. See docs/install.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./install.sh [--prefix DIR] [--config FILE] [--no-launcher] [--verify] [--force]

  --prefix DIR    install into DIR/lib/pneumoscan, with DIR/bin/pneumo-desktop and
                  DIR/share/applications/pneumoscan.desktop
                  (default: /usr/local as root, ~/.local otherwise)
  --config FILE   admin config (TOML, see config.example.toml) installed as
                  DIR/lib/pneumoscan/config.toml; without it, an upgrade keeps the current one
  --no-launcher   no bin/ link and no desktop menu entry
  --verify        run `pneumo-desktop self-test` once installed (with a scratch data folder)
  --force         upgrade even while PneumoScan runs from the install folder (the running
                  copies may then crash); without it that upgrade is refused (exit code 3)

Installing again over an existing install upgrades it; per-user data (models from the feed,
audit log, logs) lives outside the install folder and is kept. The installed files belong to
the account running this and every user can read and run them, whatever the umask.
Exit codes: 0 installed, 1 failed (a previous install is left as it was) or --verify's
self-test failed, 2 bad option (nothing changed), 3 PneumoScan is running (nothing changed).
EOF
}

die() { echo "install.sh: $*" >&2; exit 2; }

running_from() {  # ids of the processes whose executable lies in folder $1 (other users': seen by root only)
    local dir pid exe
    dir="$(cd "$1" && pwd -P)" || return 0
    for pid in /proc/[0-9]*; do
        exe="$(readlink "$pid/exe" 2>/dev/null)" || continue
        [[ "$exe" != "$dir"/* ]] || printf '%s ' "${pid#/proc/}"
    done
}

umask 022  # the folders and files made here are for every user of the PC, whatever the caller's umask
if [[ $EUID -eq 0 ]]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
config="" launcher=1 verify=0 force=0
while (($#)); do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --config) [[ $# -ge 2 ]] || die "--config needs a file"; config="$2"; shift 2 ;;
        --config=*) config="${1#*=}"; shift ;;
        --no-launcher) launcher=0; shift ;;
        --verify) verify=1; shift ;;
        --force) force=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/pneumoscan"
[[ -x "$src/pneumo-desktop" && -d "$src/_internal" ]] || die "no bundle at $src (run me from the unpacked release)"
[[ -z "$config" || -f "$config" ]] || die "config file $config does not exist"
mkdir -p "$prefix" || die "cannot create $prefix"
prefix="$(cd "$prefix" && pwd)"
app="$prefix/lib/pneumoscan"

if [[ -e "$app" ]]; then
    [[ -x "$app/pneumo-desktop" ]] || die "$app exists and is not a PneumoScan install; not touching it"
    # A running PyInstaller app still reads files from its folder: replacing them under it crashes it.
    pids="$(running_from "$app")"
    if [[ -n "$pids" ]] && ((!force)); then
        echo "install.sh: PneumoScan is running from $app (process ${pids% }): close PneumoScan first" \
             "(every user's window), then install again; --force replaces it anyway and may crash it" >&2
        exit 3
    fi
fi

# Copy beside the target, then swap: a failed copy or swap leaves the previous install as it was.
mkdir -p "$prefix/lib"
staging="$(mktemp -d "$prefix/lib/.pneumoscan-new.XXXXXX")" old=""
cleanup() {
    [[ -z "$staging" ]] || rm -rf "$staging"
    # stopped between the two moves: the previous version goes back
    [[ -z "$old" || -e "$app" || ! -e "$old" ]] || mv -T "$old" "$app"
}
trap cleanup EXIT
# Not `cp -a`: the copy belongs to the account installing and every user can read and run it,
# whatever owner and modes the unpacking left (tar run as root keeps the builder's uid; umask 077).
cp -dR --preserve=timestamps "$src/." "$staging/"
chmod -R u+rwX,go+rX,go-w "$staging"
if [[ -n "$config" ]]; then
    install -m 644 "$config" "$staging/config.toml"
elif [[ -f "$app/config.toml" ]]; then
    cp -p "$app/config.toml" "$staging/config.toml"   # upgrade: keep IT's settings
fi
if [[ -e "$app" ]]; then
    old="$prefix/lib/.pneumoscan-old.$$"
    rm -rf "$old"
    mv -T "$app" "$old"
fi
if ! mv -T "$staging" "$app"; then
    [[ -z "$old" ]] || mv -T "$old" "$app"
    echo "install.sh: could not move the new version into $app; the previous install (if any) is unchanged" >&2
    exit 1
fi
staging=""
if [[ -n "$old" ]]; then  # deleted only once the new version is in place
    rm -rf "$old"
    old=""
fi

if ((launcher)); then
    mkdir -p "$prefix/bin" "$prefix/share/applications"
    ln -sfn "$app/pneumo-desktop" "$prefix/bin/pneumo-desktop"
    escaped="$(printf '%s' "$app" | sed 's/[\\&|]/\\&/g')"
    sed "s|@APP@|$escaped|g" "$app/share/pneumoscan.desktop" > "$prefix/share/applications/pneumoscan.desktop"
    chmod 644 "$prefix/share/applications/pneumoscan.desktop"
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
fi

version="$("$app/pneumo-desktop" --version)"
echo "Installed $version in $app"
if ((verify)); then
    # PNEUMO_DESKTOP_DATA wins over the admin config's data_dir: the check writes only in the scratch folder.
    scratch="$(mktemp -d)"
    status=0
    PNEUMO_DESKTOP_DATA="$scratch/data" PNEUMO_DESKTOP_USER_CONFIG="$scratch/settings.json" \
        QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$app/pneumo-desktop" self-test || status=1
    rm -rf "$scratch"
    exit "$status"
fi
