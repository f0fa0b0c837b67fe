#!/usr/bin/env bash
# A/B of programmatic dependent launch: same build, BRAID_PDL=0 then 1.
for pdl in 0 1; do
  echo "== BRAID_PDL=$pdl"
  BRAID_PDL=$pdl ./build/braid bench --preset tiny-256 --preset llama-1b --preset llama-7b -p 0 -n 128 -r 3 --policy serial,cost --graph 1 -o csv 2>/dev/null | grep -v "^$"
done
