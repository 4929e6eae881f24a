#!/usr/bin/env bash
# Build roost's test image (`roost-test:latest`) from this host's binaries: no registry is reachable
# here, so the rootfs is busybox-static plus the host's tmux, the libraries it links, its terminfo
# entries and the C.UTF-8 locale (tmux refuses to start without a UTF-8 locale). About 7 MB, 10
# with ncurses-term's entries.
# Usage: DOCKER_HOST=unix://... .ci/test-image.sh [TAG]
set -euo pipefail
tag=${1:-roost-test:latest}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,tmp,root,etc,usr/bin,usr/lib/locale,usr/share/terminfo}
chmod 1777 "$root/tmp"
if ldd /bin/busybox >/dev/null 2>&1; then
    echo "/bin/busybox is linked dynamically: install busybox-static" >&2
    exit 1
fi
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cp "$(command -v tmux)" "$root/usr/bin/tmux"
for lib in $(ldd "$(command -v tmux)" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
# Dereferenced: with ncurses-term installed, /usr/share/terminfo holds symlinks into /lib/terminfo,
# and copying both trees as they are into one directory collides ("are the same file").
# ROOST_IMAGE_TERMINFO (directories, space-separated) is for the test of this very step.
for dir in ${ROOST_IMAGE_TERMINFO:-/usr/share/terminfo /lib/terminfo /etc/terminfo}; do
    [ -d "$dir" ] && cp -RL "$dir/." "$root/usr/share/terminfo/"
done
cp -a /usr/lib/locale/C.utf8 "$root/usr/lib/locale/"
echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"

tar -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 TERM=xterm-256color PATH=/usr/bin:/bin' \
    --change 'CMD ["/bin/sh"]' - "$tag" >/dev/null
echo "built $tag ($(docker image inspect --format '{{.Size}}' "$tag") bytes)"
