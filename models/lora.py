"""LoRA fine-tuning of Qwen2.5-VL's language model with peft (vision tower frozen, answers-only loss)."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any
from collections.abc import Sequence

from models.qwen_vl import encode, to_device

# Only the language model's attention projections: the vision blocks also carry *_proj layers.
TARGET_REGEX = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)$"


@dataclasses.dataclass
class LoraSettings:
    """LoRA and optimiser settings (MEGC2025 entries used rank 8-16, alpha 32, lr 1e-4..3e-4)."""

    rank: int = 8
    alpha: int = 32
    dropout: float = 0.05
    lr: float = 2e-4
    epochs: int = 3
    batch_size: int = 1
    grad_accum: int = 4
    seed: int = 0


def add_lora(model: Any, settings: LoraSettings) -> Any:
    """Wrap `model` in a PEFT LoRA model; everything but the adapters is frozen."""
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                     target_modules=TARGET_REGEX, bias="none")
    peft_model = get_peft_model(model, cfg)
    for name, p in peft_model.named_parameters():
        p.requires_grad = "lora_" in name
    return peft_model


def train_lora(model: Any, processor: Any, conversations: Sequence[list[dict]], answers: Sequence[str],
               settings: LoraSettings) -> tuple[Any, list[float]]:
    """Fine-tune LoRA adapters on (conversation, answer) pairs; returns the PEFT model and per-epoch mean loss."""
    import torch

    torch.manual_seed(settings.seed)
    peft_model = add_lora(model, settings)
    peft_model.train()
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr)
    order = list(range(len(conversations)))
    rng = random.Random(settings.seed)
    epoch_losses: list[float] = []
    for _ in range(settings.epochs):
        rng.shuffle(order)
        total, n, step = 0.0, 0, 0
        opt.zero_grad()
        for start in range(0, len(order), settings.batch_size):
            idx = order[start:start + settings.batch_size]
            batch = to_device(encode(processor, [conversations[i] for i in idx], [answers[i] for i in idx]),
                              peft_model)
            loss = peft_model(**batch).loss
            (loss / settings.grad_accum).backward()
            total, n, step = total + loss.item(), n + 1, step + 1
            if step % settings.grad_accum == 0:
                opt.step()
                opt.zero_grad()
        if step % settings.grad_accum:
            opt.step()
            opt.zero_grad()
        epoch_losses.append(total / max(n, 1))
    peft_model.eval()
    return peft_model, epoch_losses


def save_adapter(peft_model: Any, folder: str | Path) -> Path:
    """Save the adapter in PEFT format (adapter_config.json + adapter_model.safetensors)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(folder, safe_serialization=True)
    return folder
