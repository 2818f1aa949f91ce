"""The families added in issue 14, each on small random-weight models: timm Eva (RoPE, SwiGLU, layer scale,
registers), timm's distilled DeiT, post-norm, parallel and differential blocks, open_clip towers on timm trunks
(SigLIP with its logit bias), open_clip custom blocks and CoCa's pool, and Hugging Face CLIP / SigLIP / ViT /
DINOv2. Every model is checked against the library's own forward; the hook conventions against hand computations.
"""

from __future__ import annotations

import copy

import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.analysis.readout import Readout
from prisma_widgets.hooked.coverage import catalog

_built: dict[str, pw.HookedViT] = {}


def timm_model(name: str, **kwargs) -> pw.HookedViT:
    key = f"timm:{name}:{sorted(kwargs.items())}"
    if key not in _built:
        torch.manual_seed(0)
        _built[key] = pw.load(name, pretrained=False, depth=2, **kwargs)
    return _built[key]


def open_clip_model(name: str, **cfg) -> pw.HookedViT:
    key = f"open_clip:{name}:{sorted(cfg.items())}"
    if key not in _built:
        import open_clip

        torch.manual_seed(0)
        if cfg:
            vision = dict(open_clip.get_model_config(name)["vision_cfg"], layers=2, image_size=64, width=64,
                          head_width=32, **cfg)
            text = dict(open_clip.get_model_config(name)["text_cfg"], layers=1, width=64, heads=2)
            module = open_clip.create_model(name, pretrained=None, embed_dim=64, vision_cfg=vision, text_cfg=text).eval()
        else:
            module = catalog.open_clip_small(name, image_size=64, width=64)
        _built[key] = pw.HookedViT(module, name=f"open_clip:{name}", tokenizer=toy_tokenizer(module))
    return _built[key]


def hf_model(name: str) -> pw.HookedViT:
    if name not in _built:
        torch.manual_seed(0)
        module = catalog.hf_builders()[name]().eval()
        tok = toy_tokenizer(module) if hasattr(module, "text_model") else None
        _built[name] = pw.HookedViT(module, tokenizer=tok)
    return _built[name]


def toy_tokenizer(module):
    """Prompts to token ids a random text tower accepts: one id per word, the end token last."""
    text = getattr(module, "text", module)
    if hasattr(module, "text_model"):
        cfg = module.config.text_config
        vocab, length, eos = cfg.vocab_size, cfg.max_position_embeddings, cfg.eos_token_id
    else:
        vocab, length = int(text.vocab_size), int(text.context_length)
        eos = vocab - 1

    def tokenize(prompts):
        ids = torch.zeros(len(prompts), length, dtype=torch.long)
        for i, p in enumerate(prompts):
            words = [1 + sum(map(ord, w)) % (vocab - 3) for w in p.split()][: length - 1]
            ids[i, : len(words)] = torch.tensor(words)
            ids[i, len(words)] = eos
        return ids

    return tokenize


def pixels(model, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    clip = [model.cfg.input_frames] if model.cfg.is_video else []  # video models read [batch, T, 3, H, W]
    return torch.randn(batch, *clip, 3, *model.cfg.image_size, generator=g)


def exact(model, reference):
    """No hooks and edge hooks bit-identical; every hook within 1e-5; every resid_post is the library's block output."""
    x = pixels(model)
    seen = {}
    handles = [b.register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(i, o[0] if isinstance(o, tuple) else o))
               for i, b in enumerate(model.adapter.blocks)]  # TimeSformer's layers return tuples
    with torch.no_grad():
        ref = reference(model.model, x)
        for h in handles:
            h.remove()
        assert torch.equal(model(x), ref)
        out, cache = model.run_with_cache(x, names_filter="blocks.*.hook_resid_post")
        assert torch.equal(out, ref)
        for i in range(model.cfg.n_layers):
            assert torch.equal(cache["resid_post", i], seen[i])
        out, cache = model.run_with_cache(x)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert set(cache) == set(model.hook_names())
    for layer in range(model.cfg.n_layers):
        p = cache["pattern", layer]
        torch.testing.assert_close(p.sum(-1), torch.ones_like(p.sum(-1)), atol=1e-5, rtol=0)
    return ref, cache


def timm_ref(m, x):
    return m(x)


def open_clip_ref(m, x):
    return m.encode_image(x, normalize=False)


def hf_ref(m, x):
    return catalog.hf_image(m, x)


# ----- timm Eva -----
EVAS = [("eva02_tiny_patch14_224", dict(img_size=56)),  # SwiGLU with a norm inside, RoPE, no layer scale
        ("vit_medium_patch16_rope_reg1_gap_256", dict(img_size=64)),  # AttentionRope, register, avg pool, layer scale
        ("vit_base_patch16_rope_mixed_224", dict(img_size=64))]  # depth-dependent "mixed" RoPE


@pytest.mark.parametrize("name,kwargs", EVAS)
def test_eva_is_exact(name, kwargs):
    exact(timm_model(name, **kwargs), timm_ref)


def test_eva_hook_q_is_rotated_and_editing_it_edits_the_scores():
    """hook_q / hook_k are after RoPE: the pattern is softmax(q k / sqrt(d)) of the cached values, and a constant
    query (an edit of hook_q) gives every query of that head the same attention row (an unrotated hook would not)."""
    model = timm_model("vit_medium_patch16_rope_reg1_gap_256", img_size=64)
    x = pixels(model, batch=1)
    with torch.no_grad():
        _, cache = model.run_with_cache(x, names_filter=lambda n: n.startswith("blocks.1.attn."))
        q, k = cache["q", 1], cache["k", 1]
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / model.cfg.d_head**0.5
        torch.testing.assert_close(cache["pattern", 1], scores.softmax(-1), atol=1e-5, rtol=1e-4)

        def constant_query(q, hook):
            q = q.clone()
            q[:, :, 0] = q[:, 3:4, 0]  # head 0: every position asks what the patch at position 3 asks
            return q

        _, edited = model.run_with_cache(x, names_filter="blocks.1.attn.hook_pattern")
        edited_pattern = {}

        def keep(p, hook):
            edited_pattern["p"] = p

        model.run_with_hooks(x, [("blocks.1.attn.hook_q", constant_query), ("blocks.1.attn.hook_pattern", keep)])
    rows = edited_pattern["p"][0, 0]
    torch.testing.assert_close(rows, rows[3:4].expand_as(rows), atol=1e-6, rtol=0)
    assert not torch.allclose(edited["pattern", 1][0, 0], rows)


def test_eva_on_a_non_square_grid():
    """RoPE and the token layout follow the grid: 2 x 4 patches, a register token, no CLS."""
    model = timm_model("vit_medium_patch16_rope_reg1_gap_256", img_size=(32, 64))
    assert model.cfg.grid == (2, 4) and model.token_labels()[-1] == "r1c3" and model.cfg.n_tokens == 9
    exact(model, timm_ref)


def test_swiglu_hooks_name_the_gate_and_the_value():
    model = timm_model("eva02_tiny_patch14_224", img_size=56)
    assert "blocks.0.mlp.hook_pre_linear" in model.hook_names() and pw.act_name("pre_linear", 0) == "blocks.0.mlp.hook_pre_linear"
    with torch.no_grad():
        _, cache = model.run_with_cache(pixels(model), lambda n: n.startswith("blocks.0.mlp"))
    gate, value, post = cache["blocks.0.mlp.hook_pre"], cache["blocks.0.mlp.hook_pre_linear"], cache["blocks.0.mlp.hook_post"]
    torch.testing.assert_close(post, torch.nn.functional.silu(gate) * value)
    assert "blocks.0.mlp.hook_pre_linear" not in timm_model("vit_tiny_patch16_224", img_size=64).hook_names()


def test_eva_registers_and_layer_scale_in_head_writes():
    model = timm_model("vit_medium_patch16_rope_reg1_gap_256", img_size=64)
    assert model.token_labels()[:2] == ["reg0", "r0c0"] and model.cfg.n_registers == 1 and not model.cfg.has_cls
    with torch.no_grad():
        _, cache = model.run_with_cache(pixels(model), ["blocks.1.attn.hook_z", "blocks.1.hook_attn_out"])
        per_head, shared = model.adapter.head_writes(1, cache["z", 1])
    torch.testing.assert_close(per_head.sum(2) + shared, cache["attn_out", 1], atol=1e-6, rtol=1e-5)
    eva02 = timm_model("eva02_tiny_patch14_224", img_size=56)  # attention with an inner norm: no per-head writes
    if eva02.adapter.attn_out_projection(0) is None:
        with pytest.raises(pw.UnsupportedModelError, match="not linear in its heads"):
            eva02.adapter.head_writes(0, torch.zeros(1, eva02.cfg.n_tokens, eva02.cfg.n_heads, eva02.cfg.d_head))


# ----- timm VisionTransformer variants -----
VIT_VARIANTS = [("deit_tiny_distilled_patch16_224", dict(img_size=64)),  # distillation token
                ("vit_base_patch16_rpn_224", dict(img_size=64)),  # post-norm ResPostBlock, no CLS
                ("vit_small_patch16_18x2_224", dict(img_size=64)),  # parallel attention / MLP branches
                ("vit_base_patch16_xp_224", dict(img_size=64)),  # parallel-scaling blocks, qk norm, RMSNorm
                ("vit_dlittle_patch16_reg1_gap_256", dict(img_size=64)),  # differential attention
                ("vit_so400m_patch14_siglip_224", dict(img_size=56))]  # SigLIP attention-pool head


@pytest.mark.parametrize("name,kwargs", VIT_VARIANTS)
def test_vit_variants_are_exact_and_their_heads_add_up(name, kwargs):
    model = timm_model(name, **kwargs)
    _, cache = exact(model, timm_ref)
    torch.testing.assert_close(cache["resid_post", 0], cache["resid_mid", 0] + cache["mlp_out", 0], atol=1e-6, rtol=0)
    if model.adapter.attn_out_projection(1) is not None:
        per_head, shared = model.adapter.head_writes(1, cache["z", 1])
        total = per_head.sum(2) + (shared if shared is not None else 0)
        torch.testing.assert_close(total, cache["attn_out", 1], atol=1e-5, rtol=1e-4)


def test_distilled_deit_names_its_tokens_and_reads_out_both_heads(chelsea):
    model = timm_model("deit_tiny_distilled_patch16_224", img_size=64)
    assert model.token_labels()[:3] == ["CLS", "DIST", "r0c0"]
    lens = pw.analysis.logit_lens(model, chelsea)
    with torch.no_grad():
        out = model(chelsea)
    torch.testing.assert_close(lens.pooled[:, -1], out, atol=1e-5, rtol=1e-5)
    # a token read in both slots is the mean of the two heads
    readout = Readout(model)
    t = torch.randn(1, 1, model.cfg.d_model)
    m = model.model
    expected = (m.head(model.adapter.final_norm()(t)) + m.head_dist(model.adapter.final_norm()(t))) / 2
    torch.testing.assert_close(readout.tokens(t), expected)


# ----- open_clip -----
def test_siglip_tower_on_a_timm_trunk_reads_out_with_its_logit_bias():
    model = open_clip_model("ViT-B-16-SigLIP")
    ref, _ = exact(model, open_clip_ref)
    prompts = ["a cat", "a dog on grass"]
    readout = Readout(model, prompts)
    with torch.no_grad():
        clip = model.model
        image_logits, _ = clip.get_logits(pixels(model), model.tokenizer(prompts))
    assert readout.logit_bias == pytest.approx(float(clip.logit_bias.detach()))
    torch.testing.assert_close(readout.scores(ref), image_logits, atol=1e-4, rtol=1e-5)


def test_open_clip_custom_blocks_are_exact():
    model = open_clip_model("ViT-B-32", qk_norm=True, scale_heads=True, scale_fc=True, ls_init_value=0.1)
    assert type(model.adapter.blocks[0]).__name__ == "CustomResidualAttentionBlock"
    _, cache = exact(model, open_clip_ref)
    per_head, shared = model.adapter.head_writes(1, cache["z", 1])  # per-head scales fold into W_O
    torch.testing.assert_close(per_head.sum(2) + shared, cache["attn_out", 1], atol=1e-5, rtol=1e-4)
    inner = open_clip_model("ViT-B-32", scale_attn_inner=True)
    assert inner.adapter.attn_out_projection(0) is None


def test_coca_attentional_pool_is_exact():
    exact(open_clip_model("coca_ViT-B-32"), open_clip_ref)


@pytest.mark.parametrize("build", [lambda: open_clip_model("coca_ViT-B-32"), lambda: open_clip_model("ViT-B-16-SigLIP"),
                                   lambda: hf_model("SiglipModel")], ids=["coca", "open_clip-siglip", "hf-siglip"])
def test_attention_pools_read_each_token_as_the_pool_of_an_image_of_it(build):
    """pool_each(t) is what the attention pool gives when every token is t: the per-token lens of these models."""
    model = build()
    a = model.adapter
    v = torch.randn(3, 1, model.cfg.d_model)
    with torch.no_grad():
        uniform = v.expand(3, model.cfg.n_tokens, model.cfg.d_model).contiguous()
        torch.testing.assert_close(a.pool(uniform), a.pool_each(v)[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["ViT-B-32", "ViT-B-16-SigLIP", "coca_ViT-B-32"])
def test_open_clip_text_tower_hooks_are_exact(name):
    model = open_clip_model(name)
    tokens = model.tokenizer(["a photo of a cat", "two dogs"])
    with torch.no_grad():
        ref = model.encode_text(tokens)
        assert torch.equal(model.run_text_with_hooks(tokens), ref)
        out, cache = model.run_text_with_cache(tokens)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert set(cache) == set(model.text_hook_names()) and "text.blocks.0.hook_resid_post" in cache

    def zero(x, hook):
        return x * 0

    with torch.no_grad():
        ablated = model.run_text_with_hooks(tokens, [("text.blocks.0.attn.hook_z", zero)])
    assert not torch.allclose(ablated, ref)


# ----- Hugging Face transformers -----
@pytest.mark.parametrize("name", list(catalog.hf_builders()))
def test_hf_models_are_exact(name):
    model = hf_model(name)
    ref, _ = exact(model, hf_ref)
    if model.cfg.readout != "none":
        lens_ok = model.cfg.readout == "classes"
        readout = Readout(model) if lens_ok else Readout(model, ["a cat", "a dog"])
        with torch.no_grad():
            _, cache = model.run_with_cache(pixels(model), f"blocks.{model.cfg.n_layers - 1}.hook_resid_post")
        torch.testing.assert_close(readout.pooled(cache["resid_post", -1 % model.cfg.n_layers]),
                                   readout.scores(ref), atol=1e-5, rtol=1e-5)


def test_hf_labels_registers_and_preprocessing():
    model = hf_model("Dinov2WithRegistersForImageClassification")
    assert model.labels == [model.model.config.id2label[i] for i in range(7)]
    assert model.token_labels()[:6] == ["CLS", "reg0", "reg1", "reg2", "reg3", "r0c0"]
    batch = model.preprocess([torch.zeros(50, 70, 3, dtype=torch.uint8).numpy()])
    assert batch.shape == (1, 3, *model.cfg.image_size)
    mean, std = model.adapter.normalization()
    assert len(mean) == len(std) == 3


@pytest.mark.parametrize("name", ["CLIPModel", "SiglipModel"])
def test_hf_text_tower_hooks_are_exact(name):
    model = hf_model(name)
    tokens = model.tokenizer(["a photo of a cat", "two dogs"])
    with torch.no_grad():
        ref = model.encode_text(tokens)
        out, cache = model.run_text_with_cache(tokens)
        hidden = model.model.text_model(input_ids=tokens, output_hidden_states=True).hidden_states
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for layer in range(model.adapter.text_tower().n_layers):
        torch.testing.assert_close(cache[f"text.blocks.{layer}.hook_resid_post"], hidden[layer + 1], atol=1e-5, rtol=1e-5)


def test_hf_names_load_online_and_refuse_clearly_offline():
    with pytest.raises(pw.OfflineError, match="hf:openai/clip-vit-base-patch32"):
        pw.load("hf:openai/clip-vit-base-patch32")
    with pytest.warns(UserWarning, match="Offline"):
        model = pw.load("hf:openai/clip-vit-base-patch32", fallback="mouse-vit")
    assert model.name == "mouse-vit"


def test_a_bf16_eva_runs_in_bf16():
    model = copy.deepcopy(timm_model("eva02_tiny_patch14_224", img_size=56)).to(torch.bfloat16)
    seen = {}

    def record(x, hook):
        seen["q"] = x.dtype

    model.run_with_hooks(pixels(model, batch=1), [("blocks.0.attn.hook_q", record)])
    assert seen["q"] == torch.bfloat16
