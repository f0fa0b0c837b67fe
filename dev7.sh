set -u
bash bench/device_run.sh none >/dev/null 2>&1; echo "build rc=$?"
export LD_LIBRARY_PATH=/tmp/debs/usr/lib/x86_64-linux-gnu
mkdir -p /tmp/m
./build/braid make-model --preset llama3.2-1b --type f16 --vocab .fixtures/ggml-vocab-llama-bpe.gguf --out /tmp/m/l3.gguf > $OUT/mk.log 2>&1; echo "make-model rc=$?"
PYTHONUNBUFFERED=1 timeout 200 python3 bench/serve_sweep.py --braid ./build/braid --model /tmp/m/l3.gguf --clients 1,8,32,64 --policies serial,auto --max-tokens 128 --ctx 384 --chat-template chatml 2>$OUT/sweep.err | tee $OUT/sweep_l3.md
tail -2 $OUT/sweep.err
