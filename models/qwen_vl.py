"""Qwen2.5-VL engine: load a local checkpoint, build chat messages, encode prompts, answer greedily."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from storage.errors import InputError

MODEL_TYPE = "qwen2_5_vl"
INPUT_KINDS = ("frames", "oao", "flow")
OAO_NAMES = ("onset", "apex", "offset")


def check_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder, after checking it exists and its config.json names a Qwen2.5-VL model."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InputError("Qwen2.5-VL folder not found", file=folder)
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise InputError("no config.json: not a Hugging Face model folder", file=folder)
    try:
        model_type = json.loads(cfg_file.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError):
        raise InputError("config.json is not a JSON object", file=cfg_file) from None
    if model_type != MODEL_TYPE:
        raise InputError(f"model_type is {model_type!r}, expected {MODEL_TYPE!r} (a Qwen2.5-VL checkpoint)",
                         file=cfg_file)
    return folder


def pick_device(device: str | None = None) -> str:
    """The requested device, else cuda when available, else cpu."""
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def load_qwen(path: str | Path, device: str | None = None, adapter: str | Path | None = None) -> tuple[Any, Any]:
    """(model, processor) from a local Qwen2.5-VL folder; bf16 on GPU, fp32 on CPU; optional PEFT adapter."""
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    folder = check_checkpoint(path)
    device = pick_device(device)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
    processor = AutoProcessor.from_pretrained(folder)
    if adapter is not None:
        from peft import PeftModel

        adapter = Path(adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise InputError("not a PEFT adapter folder (no adapter_config.json)", file=adapter)
        model = PeftModel.from_pretrained(model, adapter).to(device).eval()
    return model, processor


def build_messages(question: str, media: Sequence[str], input_kind: str, system: str | None = None,
                   hints: str | None = None) -> list[dict]:
    """Chat messages for one question: frames as a video part, OAO as three images, flow as one image."""
    if input_kind not in INPUT_KINDS:
        raise InputError(f"unknown input kind {input_kind!r}; expected one of {INPUT_KINDS}")
    media = [str(m) for m in media]
    if input_kind == "frames":
        parts: list[dict] = [{"type": "text", "text": "Face video frames of a micro-expression clip:"},
                             {"type": "video", "video": media}]
    elif input_kind == "oao":
        parts = []
        for name, m in zip(OAO_NAMES, media):
            parts += [{"type": "text", "text": f"{name} frame:"}, {"type": "image", "image": m}]
    else:
        parts = [{"type": "text", "text": "Optical flow from onset to apex (hue = direction, "
                                          "brightness = magnitude):"},
                 {"type": "image", "image": media[0]}]
    text = question if not hints else f"{question}\nHint from a recognition model: {hints}"
    parts.append({"type": "text", "text": text})
    msgs = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
    return msgs + [{"role": "user", "content": parts}]


def _render(processor: Any, conversations: list[list[dict]], add_generation_prompt: bool) -> list[str]:
    return [processor.apply_chat_template(c, tokenize=False, add_generation_prompt=add_generation_prompt)
            for c in conversations]


def _media(conversations: list[list[dict]]) -> tuple[list, list]:
    from PIL import Image

    def load(p: str) -> Image.Image:
        if not Path(p).is_file():
            raise InputError("input image not found", file=p)
        return Image.open(p).convert("RGB")

    images, videos = [], []
    for conv in conversations:
        for msg in conv:
            for part in msg["content"] if isinstance(msg["content"], list) else []:
                if part["type"] == "image":
                    images.append(load(part["image"]))
                elif part["type"] == "video":
                    videos.append([load(p) for p in part["video"]])
    return images, videos


def encode(processor: Any, conversations: list[list[dict]], answers: Sequence[str] | None = None) -> dict:
    """Processor tensors for a batch of conversations; with `answers`, adds labels (prompt tokens = -100)."""
    import torch

    images, videos = _media(conversations)
    prompts = _render(processor, conversations, add_generation_prompt=True)
    tok = processor.tokenizer
    if answers is None:
        tok.padding_side = "left"
        return dict(processor(text=prompts, images=images or None, videos=videos or None, padding=True,
                              return_tensors="pt"))
    end = tok.eos_token or "<|im_end|>"
    texts = [p + a + end for p, a in zip(prompts, answers)]
    tok.padding_side = "right"
    batch = dict(processor(text=texts, images=images or None, videos=videos or None, padding=True,
                           return_tensors="pt"))
    # The prompt length counts the expanded vision placeholders, so measure it on the processed prompt.
    prompt_only = processor(text=prompts, images=images or None, videos=videos or None, padding=False)
    labels = batch["input_ids"].clone()
    for i, ids in enumerate(prompt_only["input_ids"]):
        labels[i, : len(ids)] = -100
    labels[batch["attention_mask"] == 0] = -100
    batch["labels"] = labels
    tok.padding_side = "left"
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor) or k == "labels"}


def to_device(batch: dict, model: Any) -> dict:
    """Move every tensor of a processor batch to the model's device (floats to its dtype)."""
    import torch

    dev, dtype = model.device, next(model.parameters()).dtype
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(dev, dtype=dtype) if v.is_floating_point() else v.to(dev)
        out[k] = v
    return out


def generate(model: Any, processor: Any, conversations: list[list[dict]], max_new_tokens: int = 48,
             batch_size: int = 4) -> list[str]:
    """Greedy answers (stripped) for a list of conversations."""
    import torch

    answers: list[str] = []
    for start in range(0, len(conversations), batch_size):
        chunk = conversations[start:start + batch_size]
        batch = to_device(encode(processor, chunk), model)
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=processor.tokenizer.pad_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        texts = processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        answers += [t.strip() for t in texts]
    return answers


def answer_loss(model: Any, processor: Any, conversations: list[list[dict]], answers: Sequence[str]) -> float:
    """Mean cross-entropy of the answer tokens (prompt masked) for a batch, without gradients."""
    import torch

    batch = to_device(encode(processor, conversations, answers), model)
    with torch.inference_mode():
        return float(model(**batch).loss)
