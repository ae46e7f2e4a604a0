"""Qwen2.5-VL engine on a tiny random checkpoint saved to disk and loaded like real weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from storage.errors import InputError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(checkpoint folder, image folder with 8 face-like grey PNGs)."""
    import cv2

    from helpers.tiny_qwen import build_tiny_qwen

    root = tmp_path_factory.mktemp("qwen")
    folder = build_tiny_qwen(root / "tiny")
    imgs = root / "img"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        img = cv2.GaussianBlur((rng.random((128, 128)) * 255).astype(np.uint8), (7, 7), 2)
        cv2.imwrite(str(imgs / f"f{i}.png"), img)
    return folder, sorted(str(p) for p in imgs.glob("*.png"))


def _convs(paths):
    from models.qwen_vl import build_messages

    sys = "Valid coarse classes: negative, positive, surprise."
    return [build_messages("What is the coarse expression class?", paths, "frames", system=sys),
            build_messages("What is the fine-grained expression class?", paths[:3], "oao", system=sys),
            build_messages("What are the action units?", paths[:1], "flow", system=sys, hints="coarse negative")]


def test_missing_or_non_qwen_folder_is_a_clear_error(tmp_path):
    from models.qwen_vl import check_checkpoint, load_qwen

    with pytest.raises(InputError, match="Qwen2.5-VL folder not found"):
        load_qwen(tmp_path / "nope")
    with pytest.raises(InputError, match="no config.json"):
        check_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(InputError, match="model_type is 'llama'") as e:
        check_checkpoint(tmp_path)
    assert str(tmp_path / "config.json") in str(e.value)


def test_zero_shot_all_input_kinds_and_answer_mask(tiny):
    from models.qwen_vl import encode, generate, load_qwen

    folder, paths = tiny
    model, proc = load_qwen(folder)
    convs = _convs(paths)
    video = encode(proc, convs[:1])
    assert {"pixel_values_videos", "video_grid_thw", "mm_token_type_ids"} <= set(video)
    oao = encode(proc, convs[1:2])
    assert oao["image_grid_thw"].shape[0] == 3 and "mm_token_type_ids" in oao
    answers = generate(model, proc, convs, max_new_tokens=6, batch_size=2)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert generate(model, proc, convs[2:], max_new_tokens=6) == answers[2:]  # greedy: deterministic
    batch = encode(proc, convs[:1], ["negative"])
    learned = batch["input_ids"][0][batch["labels"][0] != -100]
    assert proc.tokenizer.decode(learned) == "negative<|im_end|>"


def test_lora_lowers_loss_changes_only_adapters_and_reloads(tiny, tmp_path):
    import torch

    from models.lora import LoraSettings, save_adapter, train_lora
    from models.qwen_vl import answer_loss, generate, load_qwen

    folder, paths = tiny
    model, proc = load_qwen(folder)
    convs = _convs(paths)
    answers = ["negative", "happiness", "brow lowerer"]
    base = {k: v.clone() for k, v in model.state_dict().items()}
    before = answer_loss(model, proc, convs, answers)
    peft_model, losses = train_lora(model, proc, convs, answers,
                                    LoraSettings(epochs=4, lr=5e-3, grad_accum=1, batch_size=1))
    after = answer_loss(peft_model, proc, convs, answers)
    assert after < before - 0.1 and losses[-1] < losses[0]
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and "language_model" in n for n in trainable)
    assert not any("visual" in n for n in trainable)
    merged = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
              for k, v in peft_model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(merged[k], v) for k, v in base.items() if k in merged)
    assert len([k for k in base if k in merged]) == len(base)
    out = save_adapter(peft_model, tmp_path / "adapter")
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    expected = generate(peft_model, proc, convs, max_new_tokens=5)
    reloaded, proc2 = load_qwen(folder, adapter=out)
    assert generate(reloaded, proc2, convs, max_new_tokens=5) == expected
    assert answer_loss(reloaded, proc2, convs, answers) == pytest.approx(after, rel=1e-4)


def test_ray_actor_answers_equal_in_process_and_trains(tiny, ray_local, tmp_path):
    from models.lora import LoraSettings
    from models.qwen_vl import generate, load_qwen
    from models.vqa_actors import actor_options, answer_on_ray, train_on_ray

    folder, paths = tiny
    convs = _convs(paths)
    model, proc = load_qwen(folder)
    local = generate(model, proc, convs, max_new_tokens=6, batch_size=2)
    assert actor_options() == {"num_gpus": 0, "num_cpus": 1}
    assert answer_on_ray(folder, convs, max_new_tokens=6, batch_size=2, actors=1) == local
    res = train_on_ray(folder, convs, ["negative", "happiness", "brow lowerer"],
                       LoraSettings(epochs=3, lr=5e-3, grad_accum=1), tmp_path / "ad")
    assert res["losses"][-1] < res["losses"][0]
    assert (tmp_path / "ad" / "adapter_model.safetensors").is_file()
