#!/bin/bash
# OpInfo before/after side by side: benchmarks/opinfo.py on two source trees, interleaved in
# ten alphabetical slices of the op names, alternating which goes first (a loaded machine then
# weighs on both alike). Compare the JSON with benchmarks/opinfo_compare.py.
#   benchmarks/opinfo_side_by_side.sh BEFORE_SRC AFTER_SRC OUTDIR
# e.g. git archive <commit> src | tar -x -C /tmp/before; ... /tmp/before/src src /tmp/op
set -u
before=$1; after=$2; out=$3
mkdir -p "$out"
slices=('^[_A-Z]' '^[a]' '^[b-c]' '^[d-f]' '^[g-k]' '^[l]' '^[m]' '^n' '^[o-r]' '^[s-z]')
for i in "${!slices[@]}"; do
  order="base after"; ((i % 2)) && order="after base"
  for who in $order; do
    src=$before; [ "$who" = after ] && src=$after
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH="$src:." \
      "${PYTHON:-python}" benchmarks/opinfo.py --samples 1 --dtypes float64 --limit 20 \
      --ops "${slices[$i]}" --json "$out/$who-$i.json" > "$out/$who-$i.txt" 2>&1
    echo "slice $i ($who): rc $?"
  done
done
