#!/bin/sh
# The official image builds redis with protected mode off (it is reached over the container
# network, without a password); Debian's binary has it on, so turn it off here.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  exec redis-server --protected-mode no "$@"
fi
exec "$@"
