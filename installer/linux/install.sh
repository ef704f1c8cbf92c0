#!/usr/bin/env bash
# Install PneumoScan from the unpacked release folder (this script sits beside pneumoscan/).
# Unattended: no question asked; exit code 0 on success. See docs/install.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: ./install.sh [--prefix DIR] [--config FILE] [--no-launcher] [--verify]

  --prefix DIR    install into DIR/lib/pneumoscan, with DIR/bin/pneumo-desktop and
                  DIR/share/applications/pneumoscan.desktop
                  (default: /usr/local as root, ~/.local otherwise)
  --config FILE   admin config (TOML, see config.example.toml) installed as
                  DIR/lib/pneumoscan/config.toml; without it, an upgrade keeps the current one
  --no-launcher   no bin/ link and no desktop menu entry
  --verify        run `pneumo-desktop self-test` once installed (with a scratch data folder)

Installing again over an existing install upgrades it; per-user data (models from the feed,
audit log, logs) lives outside the install folder and is kept.
EOF
}

die() { echo "install.sh: $*" >&2; exit 2; }

if [[ $EUID -eq 0 ]]; then prefix=/usr/local; else prefix="$HOME/.local"; fi
config="" launcher=1 verify=0
while (($#)); do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --config) [[ $# -ge 2 ]] || die "--config needs a file"; config="$2"; shift 2 ;;
        --config=*) config="${1#*=}"; shift ;;
        --no-launcher) launcher=0; shift ;;
        --verify) verify=1; shift ;;
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

# Copy beside the target, then swap: a failed copy never leaves a half-installed app.
mkdir -p "$prefix/lib"
staging="$(mktemp -d "$prefix/lib/.pneumoscan-new.XXXXXX")"
trap 'rm -rf "$staging" "$prefix/lib/.pneumoscan-old"' EXIT
cp -a "$src/." "$staging/"
chmod 755 "$staging"
if [[ -n "$config" ]]; then
    install -m 644 "$config" "$staging/config.toml"
elif [[ -f "$app/config.toml" ]]; then
    cp -p "$app/config.toml" "$staging/config.toml"   # upgrade: keep IT's settings
fi
if [[ -e "$app" ]]; then
    [[ -x "$app/pneumo-desktop" ]] || die "$app exists and is not a PneumoScan install; not touching it"
    rm -rf "$prefix/lib/.pneumoscan-old"
    mv "$app" "$prefix/lib/.pneumoscan-old"
fi
mv "$staging" "$app"

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
    scratch="$(mktemp -d)"
    status=0
    PNEUMO_DESKTOP_DATA="$scratch/data" PNEUMO_DESKTOP_USER_CONFIG="$scratch/settings.json" \
        QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}" "$app/pneumo-desktop" self-test || status=1
    rm -rf "$scratch"
    exit "$status"
fi
