"""Batched generation behind one function: Hugging Face transformers (CPU or GPU) or vLLM (CUDA, optional).

    backend = load_backend("Qwen/Qwen2.5-0.5B-Instruct", backend="auto", adapter=None, device=None)
    outs = backend.complete([[ids...], ...], max_new_tokens=256, temperature=0.7, top_p=0.95, seed=0,
                            stop_ids=[...], stop_strings=[...])

`auto` picks vLLM when it is installed and CUDA is available, transformers otherwise. Both return, per prompt,
the new token ids cut at the first stop (the stop itself left out) and whether a stop was reached. Neither
carries a sampling kernel of its own: transformers' `generate` (left padding, KV cache) and vLLM's engine do
the decoding. A LoRA adapter is merged into the weights (transformers) or served as a LoRA request (vLLM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from mixforge.errors import ConfigError, ModelError

BackendName = Literal["auto", "transformers", "vllm"]

VLLM_MISSING = ("the vllm backend needs the `vllm` extra and a CUDA GPU: pip install 'mixforge[vllm]' "
                "(or choose --backend transformers, which runs anywhere)")


@dataclass(frozen=True)
class Completion:
    ids: list[int]  # new tokens, without the stop token
    finished: bool  # a stop token or stop string ended it before the token limit


class Backend(Protocol):
    name: str
    tokenizer: object
    max_positions: int  # the model's context length; prompt + new tokens must fit

    def complete(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float, top_p: float,
                 seed: int, stop_ids: Sequence[int], stop_strings: Sequence[str] = ()) -> list[Completion]:
        """Generate after each prompt (token ids); greedy when temperature is 0."""
        ...


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def choose_backend(backend: BackendName, device: str | None) -> Literal["transformers", "vllm"]:
    """The backend `auto` resolves to: vLLM with CUDA when it is installed, transformers otherwise."""
    if backend == "transformers":
        return "transformers"
    if backend == "vllm":
        if not vllm_available():
            raise ImportError(VLLM_MISSING)
        return "vllm"
    if backend != "auto":
        raise ConfigError(f"backend: {backend!r} is not one of auto, transformers, vllm")
    import torch

    on_cpu = device is not None and not str(device).startswith("cuda")
    return "vllm" if (vllm_available() and torch.cuda.is_available() and not on_cpu) else "transformers"


def load_backend(model: str, *, backend: BackendName = "auto", adapter: str | None = None, device: str | None = None,
                 precision: str = "fp32") -> Backend:
    chosen = choose_backend(backend, device)
    if chosen == "vllm":
        return VLLMBackend(model, adapter=adapter, precision=precision)
    return TransformersBackend(model, adapter=adapter, device=device, precision=precision)


class TransformersBackend:
    """`model.generate` on left-padded batches with the KV cache, stopping at the given token ids."""

    name = "transformers"

    def __init__(self, model: str, *, adapter: str | None = None, device: str | None = None,
                 precision: str = "fp32") -> None:
        import torch

        from mixforge.eval.evaluator import load_checkpoint

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        ckpt = load_checkpoint(model, adapter=adapter, precision=precision, device=device)  # adapter merged
        self.model, self.tokenizer = ckpt.model, ckpt.tokenizer
        self.model.eval()
        self.max_positions = int(getattr(self.model.config, "max_position_embeddings", None) or 2048)
        self.pad_id = (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                       else self.tokenizer.eos_token_id)
        if self.pad_id is None:
            self.pad_id = 0  # masked out by the attention mask; any id will do

    def complete(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float, top_p: float,
                 seed: int, stop_ids: Sequence[int], stop_strings: Sequence[str] = ()) -> list[Completion]:
        import torch

        from mixforge.eval.generate import left_pad

        input_ids, attention_mask = left_pad(prompts, self.pad_id)
        width = input_ids.shape[1]
        budget = min(max_new_tokens, self.max_positions - width)
        if budget <= 0:
            return [Completion([], False) for _ in prompts]
        kwargs: dict = {}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=None)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if stop_strings:
            kwargs.update(stop_strings=list(stop_strings), tokenizer=self.tokenizer)
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.model.generate(input_ids=input_ids.to(self.model.device),
                                      attention_mask=attention_mask.to(self.model.device),
                                      max_new_tokens=budget, eos_token_id=list(stop_ids) or None,
                                      pad_token_id=self.pad_id, use_cache=True, **kwargs)
        stops = set(stop_ids)
        results = []
        for row in out[:, width:].tolist():
            cut = next((i for i, t in enumerate(row) if t in stops), None)
            if cut is not None:
                results.append(Completion(row[:cut], True))
                continue
            text_stop = stop_strings and _ends_with_stop_string(self.tokenizer, row, stop_strings)
            results.append(Completion(row, bool(text_stop)))
        return results


def _ends_with_stop_string(tokenizer, ids: list[int], stop_strings: Sequence[str]) -> bool:
    text = tokenizer.decode(ids, skip_special_tokens=False)
    return any(s in text for s in stop_strings)


class VLLMBackend:
    """vLLM's engine on CUDA; prompts go in as token ids, LoRA adapters as LoRA requests."""

    name = "vllm"

    def __init__(self, model: str, *, adapter: str | None = None, precision: str = "fp32") -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ImportError(VLLM_MISSING) from exc
        from mixforge.models.registry import load_tokenizer, resolve

        path = resolve(model)
        dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(precision, "auto")
        try:
            self.llm = vllm.LLM(model=path, dtype=dtype, enable_lora=adapter is not None, seed=0)
        except Exception as exc:  # noqa: BLE001 - vLLM raises many kinds of errors when it cannot start
            raise ModelError(f"vLLM could not load {model!r}: {exc}".splitlines()[0][:400],
                             hint="vLLM needs a CUDA GPU; --backend transformers runs anywhere") from exc
        self.tokenizer = load_tokenizer(model)
        self.max_positions = int(self.llm.llm_engine.model_config.max_model_len)
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("replay-adapter", 1, adapter)

    def complete(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int, temperature: float, top_p: float,
                 seed: int, stop_ids: Sequence[int], stop_strings: Sequence[str] = ()) -> list[Completion]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=temperature, top_p=top_p if temperature > 0 else 1.0,
                                max_tokens=max_new_tokens, seed=seed, stop_token_ids=list(stop_ids),
                                stop=list(stop_strings) or None, skip_special_tokens=False,
                                include_stop_str_in_output=False)
        outs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params, lora_request=self.lora,
                                 use_tqdm=False)
        results = []
        for out in outs:
            gen = out.outputs[0]
            ids = [t for t in gen.token_ids if t not in set(stop_ids)]
            results.append(Completion(ids, gen.finish_reason == "stop"))
        return results
