"""QLoRA: the frozen base weights in 4-bit NF4 (or 8-bit) through bitsandbytes, LoRA adapters trained on top.

    model = load_quantized("Qwen/Qwen2.5-7B-Instruct", bits="4bit", device="cuda:0")

A 7B model's weights take about 4.5 GB in NF4 instead of 15 GB in bf16. bitsandbytes' kernels run on CUDA only:
`mixforge.train.distributed.check_devices` refuses a quantized run without a GPU before anything loads (extra:
mixforge[qlora]). `prepare_model_for_kbit_training` keeps norms and the output head in fp32 and makes the
embeddings' output require grad, so gradient checkpointing works through the frozen 4-bit layers.
"""

from __future__ import annotations

from typing import Literal

INSTALL_HINT = "pip install 'mixforge[qlora]' (bitsandbytes, CUDA only)"


def quantization_config(bits: Literal["4bit", "8bit"]):
    import torch
    from transformers import BitsAndBytesConfig

    if bits == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                  bnb_4bit_compute_dtype=torch.bfloat16)
    return BitsAndBytesConfig(load_in_8bit=True)


def load_quantized(model: str, *, bits: Literal["4bit", "8bit"], device: str, attn_implementation: str = "sdpa",
                   gradient_checkpointing: bool = False, trust_remote_code: bool = False):
    """The base model, quantized while it loads onto `device`, prepared for k-bit (LoRA) training."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from mixforge.models.registry import resolve

    loaded = AutoModelForCausalLM.from_pretrained(
        resolve(model), quantization_config=quantization_config(bits), dtype=torch.bfloat16,
        device_map={"": device}, attn_implementation=attn_implementation, use_safetensors=True,
        trust_remote_code=trust_remote_code)
    return prepare_model_for_kbit_training(loaded, use_gradient_checkpointing=gradient_checkpointing)
