"""Writes topoprobe's BERT test fixtures from the plain-PyTorch reference (bert_reference.py).

Outputs (deterministic: re-running gives byte-identical files):

  test/fixtures/tiny-bert-hub/      legacy hub layout (like bert-base-uncased): config.json,
                                    model.safetensors (``bert.``-prefixed, LayerNorm gamma/beta,
                                    cls.* pre-training heads, int64 bert.embeddings.position_ids),
                                    vocab.txt, tokenizer_config.json; no tokenizer.json.
  test/fixtures/tiny-bert-cls/      the same encoder as transformers' BertForSequenceClassification
                                    saves it today: config.json (3 labels), model.safetensors
                                    (``bert.``-prefixed, LayerNorm weight/bias, classifier.*), vocab.txt.
  test/fixtures/tiny-bert-expected.json
                                    inputs, float64 hidden states / pooled output / logits, the loss
                                    and float64 gradients of named parameters, tokenizer cases.

Weights are drawn from Python's ``random.Random(SEED)`` (stable across Python and torch versions),
rounded to float32 and stored as float32; the expected values are computed in float64 from exactly
those float32 values.

Run:  /usr/bin/python3 scripts/reference/make_fixtures.py
"""
from __future__ import annotations

import json
import math
import os
import random
import struct
import sys
import unicodedata
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep scripts/reference free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bert_reference import (  # noqa: E402
    MASK_VALUE,
    BertConfig,
    BertForSequenceClassification,
    flat_name,
)

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(REPO, "test", "fixtures")
SEED = 20190524
SIG_DIGITS = 10

# ---------------------------------------------------------------------------------------------
# Vocabulary: specials at 0..4 (NOT the bert-base ids 0/100/101/102/103: a loader must look the
# special tokens up by string), punctuation, lowercase words and a few "##" continuation pieces.
# ---------------------------------------------------------------------------------------------
VOCAB: List[str] = (
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    + [".", ",", "!", "?", "'", "-", "(", ")", ":", ";"]
    + [
        "the", "a", "an", "cat", "dog", "sat", "sit", "on", "mat", "is", "was", "were",
        "quick", "brown", "fox", "jump", "over", "lazy", "play", "run", "ran", "walk",
        "he", "she", "it", "they", "and", "but", "of", "to", "in", "with", "cafe", "tree",
        "house", "big", "small", "red", "blue", "i", "you", "we", "not", "this", "that",
        "no", "yes", "t", "s", "un", "happy", "bird", "fly",
    ]
    + ["##s", "##ed", "##ing", "##ly", "##n", "##er", "##es", "##y", "##ie", "##able", "##o", "##happy"]
)

CONFIG = dict(
    vocab_size=len(VOCAB),
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=40,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_act="gelu",
)
LABELS = ["negative", "neutral", "positive"]


# ---------------------------------------------------------------------------------------------
# Tokenizer: BERT BasicTokenizer (clean, CJK split, lowercase + strip accents, punctuation split)
# followed by WordPiece (greedy longest-match-first, "##" continuations, whole word -> [UNK] if
# any part fails or the word is longer than 100 characters).
# ---------------------------------------------------------------------------------------------
def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # all non-letter/number ASCII, e.g. "$" and "^", count as punctuation
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def basic_tokenize(text: str) -> List[str]:
    chars = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            chars.append(" ")
        elif _is_cjk(cp):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    words = []
    for word in "".join(chars).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        current = ""
        for c in word:
            if _is_punctuation(c):
                if current:
                    words.append(current)
                words.append(c)
                current = ""
            else:
                current += c
        if current:
            words.append(current)
    return words


def wordpiece(word: str, vocab: Dict[str, int], unk: str = "[UNK]") -> List[str]:
    if len(word) > 100:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                found = piece
                break
            end -= 1
        if found is None:
            return [unk]
        pieces.append(found)
        start = end
    return pieces


def tokenize(text: str, vocab: Dict[str, int]) -> List[str]:
    return [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]


def encode(text_a: str, text_b: str | None, vocab: Dict[str, int]) -> Tuple[List[int], List[int]]:
    """[CLS] a [SEP] (b [SEP]) -> (input_ids, token_type_ids)."""
    a = [vocab[t] for t in tokenize(text_a, vocab)]
    ids = [vocab["[CLS]"]] + a + [vocab["[SEP]"]]
    types = [0] * len(ids)
    if text_b is not None:
        b = [vocab[t] for t in tokenize(text_b, vocab)] + [vocab["[SEP]"]]
        ids += b
        types += [1] * len(b)
    return ids, types


# ---------------------------------------------------------------------------------------------
# Initialisation. Not BERT's N(0, 0.02) everywhere: that makes attention nearly uniform and the
# attention/FFN branches tiny next to the residual stream, so some mistakes would barely show.
# Instead: Linear weights N(0, 1/fan_in) (query/key 1.5x that std, for peaked attention),
# embeddings N(0, 0.5^2), every bias N(0, 0.1^2), LayerNorm gamma 1 + N(0, 0.1^2) and
# beta N(0, 0.1^2), so that a gamma/beta swap or a dropped bias changes the outputs.
# ---------------------------------------------------------------------------------------------
def init_std(name: str, shape: Sequence[int]) -> Tuple[float, float]:
    """(mean, std) of the initial values of the parameter ``name``."""
    if "LayerNorm" in name:
        return (1.0, 0.1) if name.endswith(("weight", "gamma")) else (0.0, 0.1)
    if name.endswith("bias"):
        return (0.0, 0.1)
    if "embeddings" in name:
        return (0.0, 0.5)
    fan_in = shape[1]
    scale = 1.5 if (".query." in name or ".key." in name) else 1.0
    return (0.0, scale / math.sqrt(fan_in))


def draw(rng: random.Random, name: str, shape: Sequence[int]) -> torch.Tensor:
    mean, std = init_std(name, shape)
    n = math.prod(shape)
    values = [mean + std * rng.gauss(0.0, 1.0) for _ in range(n)]
    return torch.tensor(values, dtype=torch.float64).reshape(*shape).to(torch.float32)


def build_weights(cfg: BertConfig) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Returns (model state_dict in float32, cls.* pre-training head tensors for the hub fixture)."""
    rng = random.Random(SEED)
    model = BertForSequenceClassification(cfg)
    state = {}
    for name, p in model.named_parameters():  # fixed, documented order
        state[name] = draw(rng, name, tuple(p.shape))
    H, V = cfg.hidden_size, cfg.vocab_size
    heads = {}
    for name, shape in [
        ("cls.predictions.transform.dense.weight", (H, H)),
        ("cls.predictions.transform.dense.bias", (H,)),
        ("cls.predictions.transform.LayerNorm.gamma", (H,)),
        ("cls.predictions.transform.LayerNorm.beta", (H,)),
        ("cls.predictions.bias", (V,)),
        ("cls.seq_relationship.weight", (2, H)),
        ("cls.seq_relationship.bias", (2,)),
    ]:
        heads[name] = draw(rng, name, shape)
    return state, heads


# ---------------------------------------------------------------------------------------------
# safetensors writer (format: u64 LE header length, JSON header, raw LE data). Tensors are laid out
# as the Rust safetensors crate does: sorted by dtype (larger first: I64 before F32), then name;
# the header lists "__metadata__" first, then tensors in data order; padded with spaces to 8 bytes.
# ---------------------------------------------------------------------------------------------
_DTYPE = {torch.float32: ("F32", "<f4", 4), torch.int64: ("I64", "<i8", 8)}


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor]) -> None:
    items = sorted(tensors.items(), key=lambda kv: (-_DTYPE[kv[1].dtype][2], kv[0]))
    header: Dict[str, object] = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for name, t in items:
        tag, np_dtype, _ = _DTYPE[t.dtype]
        data = t.contiguous().numpy().astype(np_dtype).tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for c in chunks:
            f.write(c)


def write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def hf_config_json(d: Dict[str, object]) -> str:
    return json.dumps(d, indent=2, sort_keys=True) + "\n"  # transformers' to_json_file style


def hub_config() -> Dict[str, object]:
    """Like bert-base-uncased's config.json on the hub (legacy fields included)."""
    return {
        "architectures": ["BertForMaskedLM"],
        "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False,
        "hidden_act": CONFIG["hidden_act"],
        "hidden_dropout_prob": 0.1,
        "hidden_size": CONFIG["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": CONFIG["intermediate_size"],
        "layer_norm_eps": CONFIG["layer_norm_eps"],
        "max_position_embeddings": CONFIG["max_position_embeddings"],
        "model_type": "bert",
        "num_attention_heads": CONFIG["num_attention_heads"],
        "num_hidden_layers": CONFIG["num_hidden_layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.6.0.dev0",
        "type_vocab_size": CONFIG["type_vocab_size"],
        "use_cache": True,
        "vocab_size": CONFIG["vocab_size"],
    }


def cls_config() -> Dict[str, object]:
    """As transformers 4.4x's BertForSequenceClassification.save_pretrained writes it."""
    return {
        "architectures": ["BertForSequenceClassification"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": CONFIG["hidden_act"],
        "hidden_dropout_prob": 0.1,
        "hidden_size": CONFIG["hidden_size"],
        "id2label": {str(i): l for i, l in enumerate(LABELS)},
        "initializer_range": 0.02,
        "intermediate_size": CONFIG["intermediate_size"],
        "label2id": {l: i for i, l in enumerate(LABELS)},
        "layer_norm_eps": CONFIG["layer_norm_eps"],
        "max_position_embeddings": CONFIG["max_position_embeddings"],
        "model_type": "bert",
        "num_attention_heads": CONFIG["num_attention_heads"],
        "num_hidden_layers": CONFIG["num_hidden_layers"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "problem_type": "single_label_classification",
        "torch_dtype": "float32",
        "transformers_version": "4.46.3",
        "type_vocab_size": CONFIG["type_vocab_size"],
        "use_cache": True,
        "vocab_size": CONFIG["vocab_size"],
    }


def hub_tensors(state: Dict[str, torch.Tensor], heads: Dict[str, torch.Tensor], cfg: BertConfig):
    out = {}
    for name, t in state.items():
        if name.startswith("classifier."):
            continue  # a pre-trained hub checkpoint has no sequence-classification head
        if ".LayerNorm." in name:
            name = name.replace(".LayerNorm.weight", ".LayerNorm.gamma").replace(".LayerNorm.bias", ".LayerNorm.beta")
        out[name] = t
    out.update(heads)  # cls.predictions.decoder.weight is tied to word_embeddings: not stored
    out["bert.embeddings.position_ids"] = torch.arange(cfg.max_position_embeddings, dtype=torch.int64)[None, :]
    return out


# ---------------------------------------------------------------------------------------------
# The batch: three inputs of real lengths 9, 5 and 7 (the third a sentence pair), padded to 9 with
# [PAD] (id 0), token_type 0 and attention_mask 0 on the right.
# ---------------------------------------------------------------------------------------------
BATCH_TEXTS: List[Tuple[str, str | None]] = [
    ("The quick brown fox jumps.", None),
    ("Cats sat", None),
    ("The dog", "It sat"),
]
BATCH_LABELS = [0, 2, 1]
GRAD_PARAMS = [
    "embeddings.word_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "encoder.layer.1.attention.self.query.weight",
    "encoder.layer.0.attention.output.LayerNorm.bias",
    "encoder.layer.2.output.dense.bias",
    "pooler.dense.bias",
    "classifier.weight",
]
TOKENIZER_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "He walked quickly, but the cats weren't playing!",
    "Café  apple\tZEBRA (tree-house) the猫sat",
    "UNHAPPY birds flying: yes; no?",
]


def make_batch(vocab: Dict[str, int]):
    encs = [encode(a, b, vocab) for a, b in BATCH_TEXTS]
    T = max(len(ids) for ids, _ in encs)
    input_ids, token_type_ids, attention_mask = [], [], []
    for ids, types in encs:
        pad = T - len(ids)
        input_ids.append(ids + [vocab["[PAD]"]] * pad)
        token_type_ids.append(types + [0] * pad)
        attention_mask.append([1] * len(ids) + [0] * pad)
    return input_ids, attention_mask, token_type_ids


def rounded(x):
    if isinstance(x, list):
        return [rounded(v) for v in x]
    v = float(format(x, f".{SIG_DIGITS}g"))
    return 0.0 if v == 0 else v  # no "-0.0"


def forward_and_grads(model: BertForSequenceClassification, input_ids, attention_mask, token_type_ids, labels):
    model.zero_grad(set_to_none=True)
    out = model(input_ids, attention_mask, token_type_ids)
    loss = F.cross_entropy(out["logits"], labels)  # mean over the batch
    loss.backward()
    return out, loss


def main() -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    vocab = {t: i for i, t in enumerate(VOCAB)}
    assert len(vocab) == len(VOCAB), "duplicate vocab entries"
    cfg = BertConfig.from_dict({**CONFIG, "num_labels": len(LABELS)})
    state, heads = build_weights(cfg)

    vocab_txt = "".join(t + "\n" for t in VOCAB)
    hub_dir = os.path.join(FIXTURES, "tiny-bert-hub")
    cls_dir = os.path.join(FIXTURES, "tiny-bert-cls")
    os.makedirs(hub_dir, exist_ok=True)
    os.makedirs(cls_dir, exist_ok=True)

    write_text(os.path.join(hub_dir, "config.json"), hf_config_json(hub_config()))
    write_text(os.path.join(hub_dir, "vocab.txt"), vocab_txt)
    write_text(os.path.join(hub_dir, "tokenizer_config.json"), json.dumps({"do_lower_case": True}) + "\n")
    write_safetensors(os.path.join(hub_dir, "model.safetensors"), hub_tensors(state, heads, cfg))

    write_text(os.path.join(cls_dir, "config.json"), hf_config_json(cls_config()))
    write_text(os.path.join(cls_dir, "vocab.txt"), vocab_txt)
    write_safetensors(os.path.join(cls_dir, "model.safetensors"), state)

    # Expected outputs, float64, from exactly the stored float32 weights.
    model = BertForSequenceClassification(cfg)
    model.load_state_dict(state, strict=True)
    model = model.double().eval()
    input_ids, attention_mask, token_type_ids = make_batch(vocab)
    ids_t = torch.tensor(input_ids)
    mask_t = torch.tensor(attention_mask)
    types_t = torch.tensor(token_type_ids)
    labels_t = torch.tensor(BATCH_LABELS)
    out, loss = forward_and_grads(model, ids_t, mask_t, types_t, labels_t)
    params = {flat_name(n): p for n, p in model.named_parameters()}

    expected = {
        "description": (
            "Float64 reference outputs of the tiny BERT in test/fixtures/tiny-bert-cls (same encoder as "
            "tiny-bert-hub), computed by scripts/reference/bert_reference.py (plain PyTorch, eval mode). "
            "Values rounded to 10 significant digits."
        ),
        "generator": "scripts/reference/make_fixtures.py",
        "seed": SEED,
        "config": {**CONFIG, "num_labels": len(LABELS)},
        "notes": {
            "mask": "additive attention mask: 0 for attention_mask==1 keys, torch.finfo(float32).min for pad keys",
            "mask_value": MASK_VALUE,
            "padding": "right padding with [PAD]=0, token_type_id 0, attention_mask 0; position ids 0..T-1 for every row",
            "hidden_states": "[num_hidden_layers+1][batch][T][hidden]: embedding output then each layer; ALL positions, pads included (pad queries are computed normally; pads are masked only as keys)",
            "pooled_output": "tanh(pooler.dense(hidden_states[-1][:, 0]))",
            "loss": "cross_entropy(logits, labels), mean over the batch",
            "grad": "d loss / d parameter in float64, full tensors, names as in BertModel without the 'bert.' prefix (checkpoint names are 'bert.' + name), Linear weights [out, in]",
            "texts": "tokens/ids: basic (lowercase, strip accents, split punctuation and CJK) + WordPiece on vocab.txt, no special tokens; input_ids: [CLS] ids [SEP]",
        },
        "batch_texts": [list(p) if p[1] is not None else [p[0]] for p in BATCH_TEXTS],
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": BATCH_LABELS,
        "loss": rounded(loss.item()),
        "logits": rounded(out["logits"].tolist()),
        "pooled_output": rounded(out["pooled_output"].tolist()),
        "hidden_states": [rounded(h.tolist()) for h in out["hidden_states"]],
        "grad": {name: rounded(params[name].grad.tolist()) for name in GRAD_PARAMS},
        "texts": [],
    }
    for text in TOKENIZER_TEXTS:
        tokens = tokenize(text, vocab)
        ids = [vocab[t] for t in tokens]
        expected["texts"].append(
            {"text": text, "tokens": tokens, "ids": ids, "input_ids": [vocab["[CLS]"]] + ids + [vocab["[SEP]"]]}
        )

    lines = ["{"]
    keys = list(expected)
    for i, k in enumerate(keys):
        v = expected[k]
        if k in ("hidden_states", "grad", "texts", "notes"):
            if isinstance(v, dict):
                inner = [f"    {json.dumps(kk)}: {json.dumps(vv, ensure_ascii=False, separators=(',', ':'), allow_nan=False)}" for kk, vv in v.items()]
                body = "{\n" + ",\n".join(inner) + "\n  }"
            else:
                inner = [f"    {json.dumps(vv, ensure_ascii=False, separators=(',', ':'), allow_nan=False)}" for vv in v]
                body = "[\n" + ",\n".join(inner) + "\n  ]"
        else:
            body = json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        lines.append(f"  {json.dumps(k)}: {body}" + ("," if i < len(keys) - 1 else ""))
    lines.append("}")
    write_text(os.path.join(FIXTURES, "tiny-bert-expected.json"), "\n".join(lines) + "\n")

    print(f"vocab_size={len(VOCAB)}  loss={loss.item():.10g}")
    for name in ["tiny-bert-hub", "tiny-bert-cls", "tiny-bert-expected.json"]:
        p = os.path.join(FIXTURES, name)
        files = [p] if os.path.isfile(p) else [os.path.join(p, f) for f in sorted(os.listdir(p))]
        for f in files:
            print(f"{os.path.relpath(f, REPO)}  {os.path.getsize(f)} bytes")


if __name__ == "__main__":
    main()
