#!/usr/bin/env bash
# Build docker/Dockerfile and run it, on a machine with no Docker engine and no image registry: Debian's buildah
# (chroot isolation) builds and runs it, and debootstrap makes the base image the Dockerfile names (Debian bookworm
# with its Python 3.11, as python:3.11-slim-bookworm is). Not part of CI: it downloads ~1 GB and takes minutes.
#
#   sudo bash docker/build-local.sh                   # base image, the image, then --help and a one-epoch training
#   WHEELS=/opt/wheels sudo bash docker/build-local.sh   # a folder with a torch CPU wheel, where its index is unreachable
#   MIRROR=http://deb.debian.org/debian TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu ...
#
# Needs root and: apt-get install buildah debootstrap. `podman run` is not used: its runtime may not be able to set
# rlimits on these machines; `buildah run --isolation chroot` runs the built image's command instead.
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR=${MIRROR:-http://deb.debian.org/debian}
BASE=${BASE:-localhost/bookworm-python:local}
IMAGE=${IMAGE:-localhost/genre-style:local}
WORK=${WORK:-/var/tmp/genre-style-image}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}
WHEELS=${WHEELS:-}

for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null || { echo "build-local: $tool is missing: apt-get install buildah debootstrap" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-local: run as root (debootstrap and buildah mount need it)" >&2; exit 2; }
export BUILDAH_ISOLATION=chroot STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}

# 1. The base image: a minimal bookworm root file system with Python 3.11, committed as $BASE.
if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
    echo "== base image $BASE from $MIRROR"
    rm -rf "$WORK/rootfs" && mkdir -p "$WORK"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$WORK/rootfs" "$MIRROR"
    # This machine's own certificate authorities (a TLS-inspecting proxy's, say) join the image's: pip and apt in
    # the build reach the registries through the same proxy as the host does.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
        chroot "$WORK/rootfs" update-ca-certificates
    fi
    rm -rf "$WORK/rootfs/var/lib/apt/lists/"* "$WORK/rootfs/var/cache/apt/archives/"*.deb
    container=$(buildah from scratch)
    mount=$(buildah mount "$container")
    tar -C "$WORK/rootfs" -cf - . | tar -C "$mount" -xf -
    buildah umount "$container"
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$container"
    buildah commit --rm "$container" "$BASE"
    rm -rf "$WORK/rootfs"
fi

# 2. The image, from the Dockerfile as it is (its base and torch index as build arguments).
echo "== image $IMAGE"
volumes=()
if [ -n "$WHEELS" ]; then volumes=(--volume "$WHEELS:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels); fi
# Docker's image format: OCI's has no SHELL, and the Dockerfile's RUN steps rely on bash's pipefail.
buildah build --isolation chroot --format docker --layers -f docker/Dockerfile -t "$IMAGE" \
    --build-arg BASE_IMAGE="$BASE" --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" "${volumes[@]}" .

# 3. Run it: --help, then a one-epoch training on the built-in corpus (written inside the container).
echo "== run $IMAGE"
container=$(buildah from "$IMAGE")
trap 'buildah rm "$container" >/dev/null' EXIT
help=$(buildah run --isolation chroot "$container" -- python -m genre_style.train --help)
echo "$help" | head -12
buildah run --isolation chroot "$container" -- python -m genre_style.train data=synthetic \
    trainer.max_epochs=1 trainer.enable_progress_bar=false data.progress=false
echo "== done: $IMAGE built and trained one epoch"
