"""Tiny random-weight models for the fine-tuning tests, built in the test itself (nothing is downloaded).

``tiny_llama(folder)`` writes a Llama-family causal LM of ~125k parameters and its own SentencePiece BPE
tokenizer (400 pieces with byte fallback, so any Korean or English text round-trips), with a ChatML chat
template: the same architecture and files as a real Hugging Face model folder, so the trainers, the merge and
llama.cpp's GGUF converter treat it like one. Its outputs are noise: tests assert the pipeline's behaviour
(loss falls, shapes, files, equivalences), never the model's answers.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Text the tokenizer is trained on: the shapes of RAG prompts in both languages.
CORPUS = [
    "Answer the question using only the context. Cite sources as [1], [2].",
    "Context: [1] The return period is 30 days from delivery. [2] Refunds take 5 business days.",
    "Question: How long is the return period? Answer: 30 days [1].",
    "다음 문맥만 사용해 질문에 답하세요. 출처를 [1], [2]처럼 인용하세요.",
    "문맥: [1] 반품 기간은 배송일로부터 30일입니다. [2] 환불은 영업일 기준 5일이 걸립니다.",
    "질문: 반품 기간은 며칠인가요? 답: 30일입니다 [1].",
    "positive negative sports politics economy science 스포츠 정치 경제 과학 good bad",
]


def tiny_tokenizer(folder: Path) -> Any:
    """Train a 400-piece SentencePiece BPE tokenizer on :data:`CORPUS` and save it as a Hugging Face
    tokenizer folder (``<s>``=1, ``</s>``=2, ``<pad>``=3, ChatML markers as single pieces)."""
    import sentencepiece as spm
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 20), model_writer=buffer, vocab_size=400, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=3,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"], num_threads=1, minloglevel=2)
    (folder / "tokenizer.model").write_bytes(buffer.getvalue())
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": "<pad>", "add_bos_token": True, "chat_template": CHATML}))
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    tokenizer.chat_template = CHATML
    return tokenizer


def tiny_llama(folder: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random Llama causal LM with :func:`tiny_tokenizer`, saved as a model folder; returns ``folder``."""
    import tempfile

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = tiny_tokenizer(Path(scratch))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=2048, bos_token_id=1, eos_token_id=2, pad_token_id=3,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
