#!/bin/sh
# Stand-in for `codex exec`, for benchmarks only (watcher.runner_cmd): it
# takes the arguments pv-run-codex passes
#   exec --skip-git-repo-check --cd DIR --output-last-message FILE
#        --model M --sandbox S [--json] [extra args] -
# reads the prompt from stdin like codex, sleeps PV_BENCH_AGENT_SECONDS
# (default 0: returns at once), writes one file in DIR so there is a change
# to commit and push, and writes the last message.
dir=
last=
while [ "$#" -gt 0 ]; do
  case "$1" in
    --cd) dir=$2; shift 2 ;;
    --output-last-message) last=$2; shift 2 ;;
    *) shift ;;
  esac
done
if [ -z "$dir" ]; then
  echo "fake-agent: no --cd folder given" >&2
  exit 2
fi
cat >/dev/null
secs=${PV_BENCH_AGENT_SECONDS:-0}
if [ "$secs" != 0 ]; then sleep "$secs"; fi
printf 'benchmark run %s\n' "${PV_RUN_ID:-?}" >"$dir/bench-${PV_RUN_ID:-run}.txt"
if [ -n "$last" ]; then printf 'Wrote bench-%s.txt (fake agent, %ss).\n' "${PV_RUN_ID:-run}" "$secs" >"$last"; fi
echo "fake-agent: done after ${secs}s"
