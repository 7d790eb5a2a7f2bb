#!/usr/bin/env bash
# Retrieval quality: codesearch against the built-in baselines, in one run_eval.py run.
#
#   benchmarks/eval.sh mined        # every dev corpus except django, stripped + unstripped
#   benchmarks/eval.sh handwritten  # the hand-written questions for requests
#   benchmarks/eval.sh dev          # all 72 hand-written dev questions (handwritten_dev.jsonl +
#                                   # handwritten_requests.jsonl); codesearch's raw answers are
#                                   # kept in benchmarks/out/raw-dev/ for benchmarks/roles_top10.py
#
# Needs the project's .venv, with sentence-transformers for builtin:minilm-window
# (.venv/bin/pip install sentence-transformers). CODESEARCH_MODEL picks the model under test.
# Results: benchmarks/out/eval-<which>.json and the table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-mined}
shift || true
shared=../shared/eval
mkdir -p benchmarks/out
export HF_HUB_OFFLINE=1
export CODESEARCH_DAEMON=${CODESEARCH_DAEMON:-0}  # in-process: no daemon left running after the run
export CODESEARCH_HOME=${CODESEARCH_HOME:-$(mktemp -d)}
py=.venv/bin/python
cs=$PWD/.venv/bin/codesearch
tool="$cs search --repo {repo} --json -k {k} --batch {queries_txt}"
if [ "$which" = dev ]; then
  raw=benchmarks/out/raw-dev && mkdir -p $raw
  tool="sh -c '$cs search --repo \"\$1\" --json -k {k} --batch \"\$2\" | tee $PWD/$raw/{corpus}-{variant}.jsonl' _ {repo} {queries_txt}"
fi
baselines=()  # BASELINES="bm25" leaves out minilm-window (slow: ~20 min per variant)
for b in ${BASELINES:-bm25 minilm-window}; do baselines+=(--tool "builtin:$b"); done
common=(--corpora "$shared/corpora.toml" --skip-large --variant both
        --index-cmd "$cs index {repo} -q"
        --tool "$tool" --label codesearch "${baselines[@]}")
case $which in
  mined) $py $shared/run_eval.py "${common[@]}" --json-out benchmarks/out/eval-mined.json "$@" ;;
  handwritten) $py $shared/run_eval.py "${common[@]}" --queries $shared/handwritten_requests.jsonl \
                 --json-out benchmarks/out/eval-handwritten.json "$@" ;;
  dev) cat $shared/handwritten_dev.jsonl $shared/handwritten_requests.jsonl > benchmarks/out/dev.jsonl
       $py $shared/run_eval.py "${common[@]}" --queries benchmarks/out/dev.jsonl \
         --json-out benchmarks/out/eval-dev.json "$@" ;;
  *) echo "usage: $0 mined|handwritten|dev [run_eval options]" >&2; exit 2 ;;
esac
