"""Independent plain-PyTorch reference implementation of BERT (eval mode).

This is the numerical reference against which topoprobe's TensorFlow.js BERT is checked. It is
written from the published architecture (Devlin et al. 2019, "BERT: Pre-training of Deep
Bidirectional Transformers for Language Understanding") following the semantics of Hugging Face
transformers' ``modeling_bert.py`` (absolute position embeddings, post-LayerNorm encoder, exact
erf GELU), without depending on ``transformers``. Dropout is omitted: everything here is the
model in eval mode.

Module and parameter names mirror Hugging Face exactly, so ``BertModel.state_dict()`` keys are the
names Hugging Face's ``BertModel`` uses today (``embeddings.word_embeddings.weight``,
``encoder.layer.0.attention.self.query.weight``, ``encoder.layer.0.attention.output.LayerNorm.weight``,
``pooler.dense.bias``, ...) and ``BertForSequenceClassification`` adds the ``bert.`` prefix and
``classifier.weight`` / ``classifier.bias``, as transformers does.

Forward pass, for input_ids / token_type_ids / attention_mask of shape [batch, T]:

1. Embeddings: word_embeddings[input_ids] + position_embeddings[0..T-1]
   + token_type_embeddings[token_type_ids], then LayerNorm (eps = layer_norm_eps, biased variance).
2. N encoder layers, each (post-LN):
     a = LayerNorm(x + attention.output.dense(MultiHeadSelfAttention(x)))
     y = LayerNorm(a + output.dense(gelu(intermediate.dense(a))))
   Self-attention: q, k, v = Linear(x), split into num_attention_heads heads of size
   head_dim = hidden_size / num_attention_heads; scores = q k^T / sqrt(head_dim) + additive_mask;
   probs = softmax(scores over keys); context = probs v, heads concatenated back.
   The additive mask is 0 for real key positions and torch.finfo(torch.float32).min for padded key
   positions (attention_mask == 0), broadcast over heads and query positions. Padded *query*
   positions are computed like any other position (they are not zeroed); they just cannot be
   attended to.
3. Pooler: tanh(pooler.dense(hidden[:, 0])).
4. Sequence classification head: logits = classifier(pooled_output).

``hidden_states`` is the list of N + 1 tensors [batch, T, hidden]: the embedding output followed by
every layer's output, as transformers returns with ``output_hidden_states=True``.

Linear weights are stored [out_features, in_features] and applied as x @ W^T + b (torch convention).
The computation runs in whatever dtype the parameters have: call ``model.double()`` for float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
from torch import nn

# Value added to the attention scores of padded key positions (what transformers uses for float32).
MASK_VALUE = torch.finfo(torch.float32).min


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    num_labels: int = 2
    extra: Dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Dict[str, object]) -> "BertConfig":
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: v for k, v in d.items() if k in known}
        if "num_labels" not in kwargs and isinstance(d.get("id2label"), dict):
            kwargs["num_labels"] = len(d["id2label"])  # type: ignore[arg-type]
        cfg = cls(**kwargs)  # type: ignore[arg-type]
        cfg.extra = {k: v for k, v in d.items() if k not in known}
        if cfg.hidden_act not in ("gelu", "gelu_python"):
            raise ValueError(f"only the exact erf GELU is implemented, not {cfg.hidden_act!r}")
        if cfg.hidden_size % cfg.num_attention_heads != 0:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        return cfg


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2)))  (transformers' "gelu")."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def additive_attention_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, T] of 1 (real) / 0 (pad)  ->  [batch, 1, 1, T] of 0 / finfo(float32).min."""
    m = attention_mask.to(dtype)[:, None, None, :]
    return (1.0 - m) * MASK_VALUE


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        position_ids = torch.arange(T, device=input_ids.device)[None, :]  # same for every row
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(position_ids)
            + self.token_type_embeddings(token_type_ids)
        )
        return self.LayerNorm(x)


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape  # [B, T, H] -> [B, heads, T, head_dim]; head h owns features h*d..(h+1)*d-1
        return x.view(B, T, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = self._split_heads(self.query(x))
        k = self._split_heads(self.key(x))
        v = self._split_heads(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, heads, Tq, Tk]
        scores = scores + mask  # mask: [B, 1, 1, Tk]
        probs = torch.softmax(scores, dim=-1)
        ctx = probs @ v  # [B, heads, T, head_dim]
        B, _, T, _ = ctx.shape
        return ctx.permute(0, 2, 1, 3).reshape(B, T, self.num_heads * self.head_dim)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)  # named "self" as in transformers: attention.self.query
        self.output = BertSelfOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gelu(self.dense(x))


class BertOutput(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(h) + residual)


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.attention(x, mask)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.num_hidden_layers)])


class BertPooler(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = BertPooler(cfg)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        token_type_ids: Optional[torch.Tensor] = None,
    ) -> Dict[str, object]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        dtype = self.embeddings.word_embeddings.weight.dtype
        mask = additive_attention_mask(attention_mask, dtype)
        x = self.embeddings(input_ids, token_type_ids)
        hidden_states: List[torch.Tensor] = [x]
        for layer in self.encoder.layer:
            x = layer(x, mask)
            hidden_states.append(x)
        return {
            "last_hidden_state": x,
            "hidden_states": hidden_states,
            "pooled_output": self.pooler(x),
        }


class BertForSequenceClassification(nn.Module):
    """BertModel under ``bert.`` plus ``classifier`` on the pooled output (dropout omitted)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.config = cfg
        self.bert = BertModel(cfg)
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None) -> Dict[str, object]:
        out = self.bert(input_ids, attention_mask, token_type_ids)
        out["logits"] = self.classifier(out["pooled_output"])
        return out


def hf_name_to_reference(name: str) -> Optional[str]:
    """Maps a checkpoint tensor name (today's or the legacy hub layout) to a
    ``BertForSequenceClassification`` state_dict key, or None for tensors the reference does not use
    (``cls.*`` pre-training heads, the ``position_ids`` buffer).

    Legacy checkpoints name LayerNorm parameters ``gamma`` / ``beta`` instead of ``weight`` / ``bias``.
    A name without the ``bert.`` prefix (a saved ``BertModel``) is given one.
    """
    if name.startswith("cls.") or name.endswith("position_ids"):
        return None
    if name.endswith(".gamma"):
        name = name[: -len("gamma")] + "weight"
    elif name.endswith(".beta"):
        name = name[: -len("beta")] + "bias"
    if name.startswith("classifier."):
        return name
    return name if name.startswith("bert.") else "bert." + name


def flat_name(state_dict_key: str) -> str:
    """``bert.encoder.layer.0...`` -> ``encoder.layer.0...`` (the name convention of the expected-output
    JSON and of topoprobe's bertParameterShapes); ``classifier.*`` unchanged."""
    return state_dict_key[len("bert."):] if state_dict_key.startswith("bert.") else state_dict_key
