"""Self-checks of the fixtures written by make_fixtures.py (needs torch; not run in CI).

1. Reads both model.safetensors files with a small reader written here independently of the writer
   (struct + json + numpy) and validates the header: length, padding, contiguous non-overlapping
   offsets covering the data, byte sizes matching dtype x shape, the expected tensor names.
2. Loads each checkpoint into the reference model (legacy gamma/beta names mapped) and recomputes
   the expected outputs in float64; compares against tiny-bert-expected.json.
3. Reports the max |float32 - float64| difference of the forward pass.
4. Checks the gradients with torch.autograd.gradcheck (float64) for one parameter and with central
   finite differences for a few entries of others.
5. Checks that pad positions do not influence real positions (pad ids / token types changed).

Run:  /usr/bin/python3 scripts/reference/check_fixtures.py
"""
from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

try:
    from torch.func import functional_call  # torch >= 2.0
except ImportError:  # torch 1.13
    from torch.nn.utils.stateless import functional_call

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # keep scripts/reference free of __pycache__
sys.path.insert(0, HERE)
from bert_reference import BertConfig, BertForSequenceClassification, flat_name, hf_name_to_reference  # noqa: E402

FIXTURES = os.path.abspath(os.path.join(HERE, "..", "..", "test", "fixtures"))
DTYPES = {"F32": ("<f4", 4), "I64": ("<i8", 8), "F16": ("<f2", 2), "F64": ("<f8", 8), "I32": ("<i4", 4)}


def read_safetensors(path: str):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), "header longer than file"
    assert n % 8 == 0, f"header length {n} not a multiple of 8"
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    data = raw[8 + n :]
    spans = []
    tensors = {}
    for name, info in header.items():
        np_dtype, size = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        assert end - begin == count * size, f"{name}: {end - begin} bytes for shape {info['shape']}"
        assert (8 + n + begin) % size == 0, f"{name}: misaligned"
        spans.append((begin, end, name))
        tensors[name] = np.frombuffer(data[begin:end], dtype=np_dtype).reshape(info["shape"])
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        assert begin == pos, f"{name}: gap or overlap at {begin} (expected {pos})"
        pos = end
    assert pos == len(data), f"data section has {len(data)} bytes, tensors cover {pos}"
    return meta, tensors, {k: (v["dtype"], v["shape"]) for k, v in header.items()}


def load_model(ckpt_dir: str, num_labels: int) -> BertForSequenceClassification:
    cfg_dict = json.load(open(os.path.join(ckpt_dir, "config.json")))
    cfg = BertConfig.from_dict({**cfg_dict, "num_labels": num_labels})
    _, tensors, _ = read_safetensors(os.path.join(ckpt_dir, "model.safetensors"))
    model = BertForSequenceClassification(cfg)
    sd = {}
    for name, arr in tensors.items():
        key = hf_name_to_reference(name)
        if key is not None:
            sd[key] = torch.from_numpy(arr.copy())
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= {"classifier.weight", "classifier.bias"}, missing
    return model.eval()


def max_diff(a, b) -> float:
    return (torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)).abs().max().item()


def main() -> None:
    exp = json.load(open(os.path.join(FIXTURES, "tiny-bert-expected.json")))
    ids = torch.tensor(exp["input_ids"])
    mask = torch.tensor(exp["attention_mask"])
    types = torch.tensor(exp["token_type_ids"])
    labels = torch.tensor(exp["labels"])
    nlab = exp["config"]["num_labels"]

    # 1. safetensors structure
    hub_dir, cls_dir = os.path.join(FIXTURES, "tiny-bert-hub"), os.path.join(FIXTURES, "tiny-bert-cls")
    hub_meta, hub_t, hub_info = read_safetensors(os.path.join(hub_dir, "model.safetensors"))
    cls_meta, cls_t, cls_info = read_safetensors(os.path.join(cls_dir, "model.safetensors"))
    assert hub_meta == {"format": "pt"} and cls_meta == {"format": "pt"}
    assert hub_info["bert.embeddings.position_ids"] == ("I64", [1, 40])
    assert (hub_t["bert.embeddings.position_ids"] == np.arange(40)).all()
    assert not any(k.endswith(("LayerNorm.weight", "LayerNorm.bias")) for k in hub_t)
    assert not any(k.endswith(("gamma", "beta")) for k in cls_t)
    assert "cls.predictions.decoder.weight" not in hub_t and "classifier.weight" not in hub_t
    assert all(k.startswith(("bert.", "cls.")) for k in hub_t)
    assert all(k.startswith(("bert.", "classifier.")) for k in cls_t)
    shared = 0
    for k, v in cls_t.items():
        if k.startswith("classifier."):
            continue
        hk = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        assert np.array_equal(hub_t[hk], v), k
        shared += 1
    print(f"[1] safetensors OK: hub {len(hub_t)} tensors, cls {len(cls_t)} tensors, {shared} shared encoder tensors identical")

    # 2. recompute expected outputs from the files
    cls64 = load_model(cls_dir, nlab).double()
    hub64 = load_model(hub_dir, nlab).double()
    with torch.no_grad():
        o_cls = cls64(ids, mask, types)
        o_hub = hub64(ids, mask, types)
    d_json = max(
        max(max_diff(h, e) for h, e in zip(o_cls["hidden_states"], exp["hidden_states"])),
        max_diff(o_cls["pooled_output"], exp["pooled_output"]),
        max_diff(o_cls["logits"], exp["logits"]),
    )
    d_hub = max(max_diff(a, b) for a, b in zip(o_cls["hidden_states"], o_hub["hidden_states"]))
    print(f"[2] float64 recompute vs JSON: max abs diff {d_json:.3e} (rounding to 10 sig. digits); hub vs cls checkpoint: {d_hub:.3e}")
    assert d_json < 1e-8 and d_hub == 0.0

    # attention statistics (to show the fixture is not degenerate)
    with torch.no_grad():
        x = o_cls["hidden_states"][0]
        att = cls64.bert.encoder.layer[0].attention.self
        B, T, _ = x.shape
        q = att._split_heads(att.query(x)); k = att._split_heads(att.key(x))
        s = q @ k.transpose(-1, -2) / att.head_dim ** 0.5
        p = torch.softmax(s + (1.0 - mask[:, None, None, :].double()) * -1e30, -1)
        real = mask[0].bool()
        print(f"    layer-0 attention (row 0): max prob {p[0][:, real][:, :, real].max():.3f}, "
              f"min prob {p[0][:, real][:, :, real].min():.2e}; pooled |max| {o_cls['pooled_output'].abs().max():.4f}")

    # 3. float32 vs float64
    cls32 = load_model(cls_dir, nlab).float()
    with torch.no_grad():
        o32 = cls32(ids, mask, types)
    d_h = [max_diff(a, b) for a, b in zip(o32["hidden_states"], o_cls["hidden_states"])]
    d_p = max_diff(o32["pooled_output"], o_cls["pooled_output"])
    d_l = max_diff(o32["logits"], o_cls["logits"])
    print(f"[3] float32 vs float64 max abs diff: hidden_states per layer {['%.2e' % d for d in d_h]}, pooled {d_p:.2e}, logits {d_l:.2e}")
    assert max(d_h + [d_p, d_l]) < 1e-4

    # 4. gradients
    cls64.zero_grad()
    out = cls64(ids, mask, types)
    loss = F.cross_entropy(out["logits"], labels)
    loss.backward()
    assert abs(loss.item() - exp["loss"]) < 1e-9
    params = {flat_name(n): p for n, p in cls64.named_parameters()}
    d_grad = max(max_diff(params[n].grad, g) for n, g in exp["grad"].items())
    print(f"[4] loss {loss.item():.10g} (JSON {exp['loss']}); autograd vs JSON grads max abs diff {d_grad:.2e}")
    assert d_grad < 1e-9
    assert (params["embeddings.word_embeddings.weight"].grad[0] == 0).all(), "[PAD] row must get zero gradient"

    def loss_with(name: str, value: torch.Tensor) -> torch.Tensor:
        """The loss with parameter ``name`` (flat name) replaced by ``value``."""
        key = name if name.startswith("classifier.") else "bert." + name
        logits = functional_call(cls64, {key: value}, (ids, mask, types))["logits"]
        return F.cross_entropy(logits, labels)

    # gradcheck on one full parameter (1024 entries)
    target = "encoder.layer.1.attention.self.query.weight"
    base = params[target].detach().clone()
    f = lambda w: loss_with(target, w)  # noqa: E731
    ok = torch.autograd.gradcheck(f, (base.clone().requires_grad_(True),), eps=1e-6, atol=1e-8, rtol=1e-5)
    print(f"    torch.autograd.gradcheck({target}): {ok}")
    fd_worst = 0.0
    eps = 1e-6
    with torch.no_grad():
        for name, idxs in [
            ("embeddings.word_embeddings.weight", [(15, 3), (68, 0), (20, 31), (39, 7)]),
            ("embeddings.token_type_embeddings.weight", [(0, 5), (1, 5), (1, 30)]),
            ("embeddings.LayerNorm.weight", [(0,), (17,)]),
            ("encoder.layer.0.attention.output.LayerNorm.bias", [(4,)]),
            ("encoder.layer.2.output.dense.bias", [(9,)]),
            ("pooler.dense.bias", [(1,)]),
            ("classifier.weight", [(2, 11)]),
        ]:
            for idx in idxs:
                w = params[name].detach().clone()
                wp, wm = w.clone(), w.clone()
                wp[idx] += eps
                wm[idx] -= eps
                fd = (loss_with(name, wp) - loss_with(name, wm)).item() / (2 * eps)
                g = exp["grad"][name]
                for i in idx:
                    g = g[i]
                fd_worst = max(fd_worst, abs(fd - g))
    print(f"    central finite differences (eps {eps}) vs JSON grads: max abs diff {fd_worst:.2e}")
    assert fd_worst < 1e-7

    # 5. pad invariance
    ids2, types2 = ids.clone(), types.clone()
    pad = mask == 0
    ids2[pad] = 50
    types2[pad] = 1
    with torch.no_grad():
        o2 = cls64(ids2, mask, types2)
    d_pad = 0.0
    for a, b in zip(o_cls["hidden_states"], o2["hidden_states"]):
        d_pad = max(d_pad, (a - b)[~pad].abs().max().item())
    d_pad = max(d_pad, max_diff(o_cls["pooled_output"], o2["pooled_output"]), max_diff(o_cls["logits"], o2["logits"]))
    d_padpos = max((a - b)[pad].abs().max().item() for a, b in zip(o_cls["hidden_states"], o2["hidden_states"]))
    print(f"[5] pads changed (id 0 -> 50, type 0 -> 1): real positions/pooled/logits max diff {d_pad:.1e}; pad positions change by {d_padpos:.2f}")
    assert d_pad < 1e-12 and d_padpos > 1e-3

    # 6. a row evaluated alone, unpadded, equals its padded-batch result
    with torch.no_grad():
        L = int(mask[1].sum())
        o_single = cls64(ids[1:2, :L], mask[1:2, :L], types[1:2, :L])
    d_single = max(max_diff(a[1, :L], b[0]) for a, b in zip(o_cls["hidden_states"], o_single["hidden_states"]))
    print(f"[6] row 1 alone (T={L}) vs in the padded batch: max diff {d_single:.1e}")
    assert d_single < 1e-12
    print("all checks passed")


if __name__ == "__main__":
    main()
