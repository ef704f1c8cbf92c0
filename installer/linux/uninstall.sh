#!/usr/bin/env bash
# Uninstall PneumoScan (this script is installed as <prefix>/lib/pneumoscan/uninstall.sh).
# The audit log and the other per-user data are kept unless --purge is given. See docs/install.md.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: uninstall.sh [--prefix DIR] [--purge [--user NAME]...] [--keep-app] [--dry-run] [--force]

  --prefix DIR   the prefix given to install.sh (default: the one this script is installed in)
  --purge        also delete a user's PneumoScan data: in their data folder the audit log
                 (audit.sqlite*, set-aside damaged copies too), models/, feed/ and logs/, and
                 their settings.json; any other file there is kept, and so is the folder then.
                 Whose data: the account running this; as root, only the accounts named with
                 --user. Refused (nothing is changed) when the admin config sets data_dir: that
                 folder may be every user's.
  --user NAME    as root: purge the data of account NAME (repeatable; implies --purge); it is
                 deleted as that account, in the default places under its home folder
  --keep-app     only purge the data, leave the install (implies --purge)
  --dry-run      print what would be removed, remove nothing
  --force        uninstall even while PneumoScan runs from the install folder

Without --purge the audit log (audit.sqlite) and the rest of the per-user data stay where they are.
Exit codes: 0 done, 2 bad option or refused (nothing changed), 3 PneumoScan is running.
EOF
}

die() { echo "uninstall.sh: $*" >&2; exit 2; }

running_from() {  # ids of the processes whose executable lies in folder $1 (other users': seen by root only)
    local dir pid exe
    dir="$(cd "$1" && pwd -P)" || return 0
    for pid in /proc/[0-9]*; do
        exe="$(readlink "$pid/exe" 2>/dev/null)" || continue
        [[ "$exe" != "$dir"/* ]] || printf '%s ' "${pid#/proc/}"
    done
}

self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
prefix="$(dirname "$(dirname "$(dirname "$self")")")"
purge=0 keep_app=0 dry=0 force=0 users=()
while (($#)); do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
        --prefix=*) prefix="${1#*=}"; shift ;;
        --purge) purge=1; shift ;;
        --user) [[ $# -ge 2 ]] || die "--user needs an account name"; users+=("$2"); purge=1; shift 2 ;;
        --user=*) users+=("${1#*=}"); purge=1; shift ;;
        --keep-app) keep_app=1 purge=1; shift ;;
        --dry-run) dry=1; shift ;;
        --force) force=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done

app="$prefix/lib/pneumoscan"
here="$(dirname "$self")"
exe="$app/pneumo-desktop"  # what says where each user's data is (self-test --paths)
if [[ ! -x "$app/pneumo-desktop" || ! -d "$app/_internal" ]]; then
    # Uninstalled before without --purge: the release's own copy (this script beside its pneumo-desktop)
    # can still delete the data that was kept, and there is no app left to remove.
    [[ -x "$here/pneumo-desktop" && -d "$here/_internal" && $purge -eq 1 ]] \
        || die "no PneumoScan install in $app" \
            "(to delete the data an earlier uninstall kept: run pneumoscan/uninstall.sh --purge from the unpacked release)"
    exe="$here/pneumo-desktop" keep_app=1
    echo "No PneumoScan install in $app: deleting the data it left only (paths from $exe)"
fi
me="$(id -un)" own=0 others=()
if ((purge)) && [[ ${#users[@]} -eq 0 ]]; then
    # sudo sets HOME to root's: purging "the running user" would silently miss the radiologist's data
    [[ $EUID -ne 0 ]] || die "as root, --purge deletes the data of the accounts named with --user NAME" \
        "(e.g. --user ${SUDO_USER:-alice}), not root's own; or run uninstall.sh --keep-app as each user"
    own=1
fi
for u in "${users[@]}"; do
    if [[ "$u" == "$me" ]]; then own=1
    elif [[ $EUID -eq 0 ]]; then others+=("$u")
    else die "only root can purge the data of $u"
    fi
done

# The app's own entries in its data folder (desktop_app/config.py AppPaths, audit.py, selftest.py).
OWN=(models feed logs audit.sqlite audit.sqlite-wal audit.sqlite-shm audit.sqlite-journal)
field() { printf '%s\n' "$1" | sed -n "s/^$2: //p" | head -n 1; }

plan_own_purge() {  # fills `doomed` and `folders` for the running account, or dies having changed nothing
    local where bare name f
    where="$("$exe" self-test --paths 2>/dev/null)" \
        || die "$exe does not say where $me's data is; nothing was changed"
    # Asked again without any admin config: a data folder that differs was set by the admin config.
    bare="$(PNEUMO_DESKTOP_CONFIG=/dev/null "$exe" self-test --paths 2>/dev/null)" \
        || die "$exe does not say where $me's data is; nothing was changed"
    data="$(field "$where" data_dir)" settings="$(field "$where" user_settings)"
    if [[ "$data" != "$(field "$bare" data_dir)" ]]; then
        die "not purging $data: the admin config $(field "$where" admin_config) sets data_dir, a folder that" \
            "may hold every user's audit log. Nothing was changed. Export what must be kept (the app's" \
            "audit view exports CSV), then delete that folder's models/, feed/, logs/ and audit.sqlite*" \
            "yourself, or run uninstall.sh without --purge"
    fi
    [[ "$data" == /?* && "$settings" == /?* ]] || die "unexpected data paths '$data', '$settings'; nothing was changed"
    [[ ! -L "$data" ]] || die "$data is a symbolic link (to $(readlink "$data")): not following it; nothing was changed"
    doomed=() folders=("$data" "$(dirname "$settings")")
    shopt -s nullglob
    if [[ -d "$data" ]]; then
        for name in "${OWN[@]}"; do
            [[ ! -e "$data/$name" && ! -L "$data/$name" ]] || doomed+=("$data/$name")
        done
        doomed+=("$data"/.selftest-*)  # left by a self-test that was killed
        doomed+=("$data"/audit.sqlite.damaged-*)  # damaged audit logs the app set aside (desktop_app/audit.py)
    fi
    for f in "$settings" "$(dirname "$settings")/.$(basename "$settings")".*.tmp; do
        [[ ! -e "$f" && ! -L "$f" ]] || doomed+=("$f")
    done
    shopt -u nullglob
}

purge_own() {
    local f
    if ((${#doomed[@]} == 0)); then
        echo "No PneumoScan data of $me in $data"
        return
    fi
    for f in "${doomed[@]}"; do
        ((dry)) && echo "Would delete $f" && continue
        # rm -r never follows a symbolic link: one in the folder goes, not what it points to
        rm -rf --one-file-system -- "$f"
        echo "Deleted $f"
    done
    ((dry)) && return
    for f in "${folders[@]}"; do
        if [[ -d "$f" && ! -L "$f" ]] && ! rmdir -- "$f" 2>/dev/null; then
            echo "Kept $f: it holds other files"
        fi
    done
}

as_user() {  # this script as account $1 (its data, its rights), in a clean environment of its own
    local user="$1" home runuser
    shift
    home="$(getent passwd "$user" | cut -d: -f6)" || true
    [[ -n "$home" ]] || die "no account named $user"
    runuser="$(PATH="$PATH:/usr/sbin:/sbin" command -v runuser)" || die "runuser (util-linux) is needed for --user"
    (cd / && "$runuser" -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" PATH=/usr/bin:/bin \
        LANG=C.UTF-8 bash "$self" --prefix "$prefix" --user "$user" --keep-app "$@")
}

if ((!keep_app && !force)); then
    pids="$(running_from "$app")"
    if [[ -n "$pids" ]]; then
        echo "uninstall.sh: PneumoScan is running from $app (process ${pids% }): close PneumoScan first" \
             "(every user's window); --force uninstalls anyway" >&2
        exit 3
    fi
fi

# Every check first (each user's, as that user), so that a refusal leaves everything as it was.
((!own)) || plan_own_purge
for u in "${others[@]}"; do as_user "$u" --dry-run >/dev/null || exit 2; done
if ((dry)); then
    ((!own)) || purge_own
    for u in "${others[@]}"; do as_user "$u" --dry-run; done
    ((keep_app)) || echo "Would remove $app with its bin/ link and menu entry"
    exit 0
fi

((!own)) || purge_own
for u in "${others[@]}"; do as_user "$u"; done
((!keep_app)) || exit 0

kept="$("$app/pneumo-desktop" self-test --paths 2>/dev/null || true)"
if [[ "$(readlink "$prefix/bin/pneumo-desktop" 2>/dev/null)" == "$app/pneumo-desktop" ]]; then
    rm -f "$prefix/bin/pneumo-desktop"
fi
desktop="$prefix/share/applications/pneumoscan.desktop"
if [[ -f "$desktop" ]] && grep -qF "$app/pneumo-desktop" "$desktop"; then
    rm -f "$desktop"
    command -v update-desktop-database >/dev/null && update-desktop-database -q "$prefix/share/applications" || true
fi
rm -rf "$app"
# the folders install.sh made for it, when nothing else is in them (never a folder something else uses)
for d in "$prefix/bin" "$prefix/share/applications" "$prefix/share" "$prefix/lib"; do
    [[ -d "$d" && ! -L "$d" ]] && rmdir -- "$d" 2>/dev/null || true
done
echo "Removed PneumoScan from $app"
if ((!purge)) && [[ $EUID -ne 0 ]]; then
    echo "Kept the audit log and data in $(field "$kept" data_dir)"
    echo "To delete them later: pneumoscan/uninstall.sh --prefix $prefix --purge, from the unpacked release"
elif ((!purge)); then
    echo "Kept each user's audit log and data (~NAME/.local/share/pneumoscan unless data_dir moves it)"
fi
