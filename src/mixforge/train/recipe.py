"""The training recipe: `run(cfg)` reads top to bottom.

    settings -> data (domain + general replay sources) -> tokenize (on-disk token stores) -> model (+ LoRA) -> mixer
    -> optimizer -> resume -> tracker -> verify -> loop (mixed steps, forgetting curve, checkpoints) -> final save

One recipe serves SFT (loss on assistant tokens), continued pre-training (loss on every token) and DPO
(preference loss on the domain pairs; the general replay records keep an SFT loss so mixing still protects
general skills). The batches come from mixforge's own mixer: every optimizer step holds exactly the shares the
mixing config asks for. A run resumes from its newest checkpoint by itself, mixer state included, so the data
order continues exactly; on CPU with these settings a resumed run ends with the same weights, bit for bit.

Distributed: under torchrun (WORLD_SIZE > 1) each rank takes its disjoint share of every global step from the
mixer, the model is wrapped in DDP or sharded by FSDP (distributed.py; gloo on CPU, NCCL on GPU), and only rank 0
logs. The loss never holds the whole micro-batch's logits (losses.py: chunked cross-entropy).
"""

from __future__ import annotations

import json
import math
import signal
import time
from collections import defaultdict
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from mixforge.config import RunConfig
from mixforge.errors import ConfigError
from mixforge.methods import RECORD_KIND, uses_lora
from mixforge.progress import progress_bar
from mixforge.train import checkpoint as ckpt
from mixforge.train.batching import pack_batch, pad_batch
from mixforge.train.distributed import (
    World,
    all_reduce_sum,
    check_devices,
    even_chunks,
    init_world,
    load_checkpoint,
    parallel_settings,
    save_checkpoint,
    save_final_model,
    unwrap,
    wrap_model,
)
from mixforge.train.losses import default_chunk_size
from mixforge.train.replay_loss import kl_to_base_sum
from mixforge.train.store import TokenStore, prepared_data, source_data, token_store
from mixforge.train.tokenize import IGNORE, Tokenized, TokenizedPair

DOMAIN = "customer"  # the source name of the user's own data, as in customer_data_percent


@dataclass
class RunResult:
    status: str  # succeeded | stopped
    output_path: str
    final_path: str | None
    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None


# ---------------------------------------------------------------------------------------------------------
# stop requests: SIGTERM (`mixforge jobs stop`) or Ctrl-C -> checkpoint, then exit cleanly
# ---------------------------------------------------------------------------------------------------------
class StopFlag:
    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._handle)
        except ValueError:  # not the main thread (e.g. notebooks running us in a worker thread)
            pass

    def _handle(self, signum, frame) -> None:  # noqa: ARG002
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True


# ---------------------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------------------
def build_model(cfg: RunConfig, world: World):
    from mixforge.models.registry import load_model, lora_target_modules

    o = cfg.overrides
    if o.quantization != "none":  # QLoRA: 4/8-bit frozen base weights, loaded onto the GPU (quantization.py)
        from mixforge.train.quantization import load_quantized

        model = load_quantized(cfg.model, bits=o.quantization, device=world.device, trust_remote_code=cfg.trust_remote_code,
                               attn_implementation=o.attn_implementation, gradient_checkpointing=o.gradient_checkpointing)
    else:
        model = load_model(cfg.model, precision=o.precision, trust_remote_code=cfg.trust_remote_code)
        model.set_attn_implementation(o.attn_implementation)
    if o.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if uses_lora(cfg.method):
        from peft import LoraConfig, get_peft_model

        targets = o.lora_target_modules or lora_target_modules(model.config.model_type)
        lora = LoraConfig(
            r=o.lora_rank,
            lora_alpha=o.lora_alpha,
            lora_dropout=o.lora_dropout,
            target_modules=targets,
            modules_to_save=o.lora_modules_to_save or None,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
        if o.gradient_checkpointing:
            model.enable_input_require_grads()
    return model if o.quantization != "none" else model.to(world.device)  # quantized weights are placed already


def reference_model(cfg: RunConfig, model, world: World):
    """What the tuned model is compared with (KL-to-base, DPO reference): for LoRA the same weights with the
    adapter disabled (no second copy); for full-rank methods a frozen copy of the starting weights."""
    if uses_lora(cfg.method):
        return None
    from mixforge.models.registry import load_model

    ref = load_model(cfg.model, precision=cfg.overrides.precision, trust_remote_code=cfg.trust_remote_code)
    ref.requires_grad_(False)
    return ref.eval().to(world.device)


def base_context(model, ref):
    """Run `model` as the base: disables the LoRA adapter (ref is None) or does nothing (a separate ref)."""
    return unwrap(model).disable_adapter() if ref is None else nullcontext()


# ---------------------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------------------
def token_nll_sum(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed next-token cross-entropy over the label tokens (labels are shifted here, not in the model)."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False).logits[:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels[:, 1:].reshape(-1), ignore_index=IGNORE,
                           reduction="sum")


def sequence_logps(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Summed log-probability of each row's label tokens (padded batches only): shape (rows,)."""
    labels = batch["labels"][:, 1:]
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits[:, :-1].float()
    logps = torch.log_softmax(logits, dim=-1)
    mask = labels != IGNORE
    picked = logps.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def dpo_loss_sum(model, ref, pairs: list[TokenizedPair], *, pad_id: int, beta: float, device: str) -> torch.Tensor:
    """Summed DPO loss of `pairs`: -log sigmoid(beta * (policy margin - reference margin))."""
    batch = pad_batch([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id=pad_id)
    batch = {k: v.to(device) for k, v in batch.items()}
    n = len(pairs)
    policy = sequence_logps(model, batch)
    with torch.no_grad(), base_context(model, ref):
        reference = sequence_logps(model if ref is None else ref, batch)
    margin = (policy[:n] - policy[n:]) - (reference[:n] - reference[n:])
    return -F.logsigmoid(beta * margin).sum()


def make_batch(records: list[Tokenized], *, packing: bool, seq_len: int, pad_id: int, device: str):
    batch = pack_batch(records, seq_len=seq_len, pad_id=pad_id) if packing else pad_batch(records, pad_id=pad_id)
    return {k: v.to(device) for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------------------
# forgetting curve: validation loss per source and KL to the base model
# ---------------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, ref, val: dict[str, list[Tokenized]], *, micro: int, batches: int, pad_id: int,
             device: str) -> dict[str, float]:
    """Mean token loss on each held-out source, and the mean per-token KL(base || tuned) on the held-out
    general records (a cheap early warning of forgetting)."""
    model.eval()
    metrics: dict[str, float] = {}
    kl_sum, kl_tokens = 0.0, 0
    for name, records in val.items():
        loss_sum, tokens = 0.0, 0
        for i in range(0, min(len(records), micro * batches), micro):
            batch = make_batch(records[i : i + micro], packing=False, seq_len=0, pad_id=pad_id, device=device)
            tokens += int((batch["labels"][:, 1:] != IGNORE).sum())
            if name == DOMAIN:
                loss_sum += token_nll_sum(model, batch).item()
            else:  # one forward of the tuned model gives both its loss and its side of the KL
                inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
                logits = model(**inputs, use_cache=False).logits.float()
                loss_sum += F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)),
                                            batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE,
                                            reduction="sum").item()
                tuned = torch.log_softmax(logits, -1)
                with base_context(model, ref):
                    base = torch.log_softmax((model if ref is None else ref)(**inputs, use_cache=False).logits.float(), -1)
                mask = batch["attention_mask"].bool()
                kl = (base.exp() * (base - tuned)).sum(-1)
                kl_sum += float(kl[mask].sum())
                kl_tokens += int(mask.sum())
        if tokens:
            metrics[f"val_loss/{name}"] = loss_sum / tokens
    if kl_tokens:
        metrics["kl_to_base"] = kl_sum / kl_tokens
    model.train()
    return metrics


# ---------------------------------------------------------------------------------------------------------
# the recipe
# ---------------------------------------------------------------------------------------------------------
def run(cfg: RunConfig, *, show_progress: bool = True) -> RunResult:  # noqa: C901 - a recipe reads top to bottom
    import numpy as np

    from mixforge.mix.sampler import MixSampler
    from mixforge.models.registry import load_tokenizer, model_info
    from mixforge.train.mixing import generate_self_sources, heldout_path, mixing_config

    # ---- settings --------------------------------------------------------------------------------------
    o = cfg.overrides
    strategy, fsdp_cpu_offload = parallel_settings(cfg.runtime)  # ddp or fsdp (torchrun-family runtimes)
    check_devices(quantization=o.quantization, attn_implementation=o.attn_implementation, loss_kernel=o.loss_kernel,
                  strategy=strategy)  # e.g. QLoRA without CUDA: refused before anything loads
    world = init_world()
    kind = RECORD_KIND[cfg.method]
    out = Path(cfg.output_path)
    ckpt_dir = out / "checkpoints"
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run_config.json").write_text(cfg.model_dump_json(indent=1))
    torch.manual_seed(o.seed)
    stop = StopFlag()
    stop.install()

    # ---- data: the domain source and the general replay sources -----------------------------------------
    mix = mixing_config(cfg.mixing, enabled=cfg.data_mixing_enabled, model=cfg.model, method=cfg.method)
    schedule = mix.source_schedule(domain=DOMAIN)
    general = mix.general_sources()  # source name ("math/embedded") -> Source, for every source with a share
    # self-generated replay (general_data: self): the base model writes those records now, or the cache has them
    general, self_replay = generate_self_sources(mix, general, model=cfg.model, device=world.device,
                                                 main=world.main, show_progress=show_progress)
    locations = {DOMAIN: cfg.data_path, **{name: src.location for name, src in general.items()}}

    # ---- tokenizer ------------------------------------------------------------------------------------------
    tokenizer = load_tokenizer(cfg.model, trust_remote_code=cfg.trust_remote_code)
    info = model_info(cfg.model, trust_remote_code=cfg.trust_remote_code, with_lora_targets=False)
    seq_len = min(o.max_seq_len or info.max_seq_len, info.max_seq_len)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # ---- tokenize every record once, into on-disk token stores (store.py) -------------------------------
    # Keyed by data, tokenizer, template and max_seq_len: later runs, resumes and the other ranks reuse them.
    # Before the model, so that the forked tokenizing workers do not carry its weights.
    def tok(data, *, pairs: bool = False, data_key: str | None = None) -> TokenStore:
        return token_store(tokenizer, data, max_seq_len=seq_len, pairs=pairs, data_key=data_key, rank=world.rank)

    tokenized: dict[str, TokenStore] = {DOMAIN: tok(prepared_data(cfg.data_path), pairs=kind == "preference")}
    if not len(tokenized[DOMAIN]):
        raise ConfigError(f"data_path: {cfg.data_path} holds no records")
    for name, src in general.items():
        reader, key = source_data(src)
        tokenized[name] = tok(reader, data_key=key)
    truncated = {name: int(np.count_nonzero(items.truncated)) for name, items in tokenized.items()}
    val: dict[str, TokenStore] = {}
    if cfg.validation_path and kind != "preference":
        val[DOMAIN] = tok(prepared_data(cfg.validation_path))
    # the forgetting curve watches the general sources even when nothing is mixed in (domain-only runs are
    # where forgetting shows): then the default mix's sources, for validation only
    watched = general or mixing_config(None, enabled=True, model=cfg.model, method=cfg.method).general_sources()
    for name, src in watched.items():
        if (held := heldout_path(src)) is not None:
            val[name] = tok(prepared_data(held))

    # ---- model ------------------------------------------------------------------------------------------------
    model = build_model(cfg, world)
    ref = reference_model(cfg, model, world)
    # what the loop calls: the loss inside forward (losses.py), under DDP or FSDP shards with several processes;
    # FSDP replaces the parameters, so the optimizer is built after this
    chunk = o.loss_chunk_size if o.loss_chunk_size is not None else default_chunk_size(
        model.get_output_embeddings().weight.shape[0])
    train_model = wrap_model(model, strategy=strategy, world=world, loss_chunk_size=chunk,
                             loss_kernel=o.loss_kernel, cpu_offload=fsdp_cpu_offload, compile=o.compile)

    # ---- the mixer: exact shares in every optimizer step -----------------------------------------------
    # token counts, loss-token counts and JSONL rows (for `mix trace`) come straight from the stores' columns
    sources = {name: items.source_index(locations[name]) for name, items in tokenized.items()}
    # token units: the step is a token budget (global_batch_tokens, or records x max_seq_len)
    budget = o.global_batch_size if o.mix_unit == "examples" else (o.global_batch_tokens or o.global_batch_size * seq_len)
    sampler = MixSampler(sources, schedule, global_batch_size=budget, world_size=world.size, rank=world.rank,
                         seed=o.seed, unit=o.mix_unit, max_steps=o.max_steps,
                         epochs=None if o.max_steps else (o.max_epochs or 1.0), domain=DOMAIN)
    total_steps = len(sampler)
    if world.main:
        _check_manifest(out, sampler, mix, force=o.force_resume, self_replay=self_replay)

    # ---- optimizer and schedule -------------------------------------------------------------------------
    from transformers import get_scheduler

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=o.learning_rate, weight_decay=o.weight_decay)
    warmup = o.warmup_steps or int(o.warmup_ratio * total_steps)
    scheduler = get_scheduler(o.lr_scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps)

    # ---- verify: one forward pass before the long loop (eval mode: it must not consume dropout RNG) --------
    # the same code path on a few tokens: the shortest domain record's first 32 (a record-length forward costs
    # seconds on a 135M model on 2 cores), each carrying loss so that the head and the loss run too
    probe = [tokenized[DOMAIN][int(np.argmin(sources[DOMAIN].tokens))]]
    if kind != "preference":
        head = [int(t) for t in probe[0].input_ids[:32]]
        probe = [Tokenized(head, head, 0)]
    model.eval()
    with torch.no_grad():
        if kind == "preference":
            dpo_loss_sum(train_model, ref, probe, pad_id=pad_id, beta=o.dpo_beta, device=world.device)
        else:
            token_nll_sum(train_model, make_batch(probe, packing=False, seq_len=seq_len, pad_id=pad_id, device=world.device))

    # ---- resume from the newest checkpoint, if any ---------------------------------------------------------
    start_step, tokens_seen, mlflow_run_id = 0, 0, None
    latest = ckpt.latest_checkpoint(ckpt_dir)
    if latest is not None:  # an unsharded or an FSDP checkpoint, from any number of processes (distributed.py)
        state = load_checkpoint(latest, train_model=train_model, optimizer=optimizer, scheduler=scheduler, world=world)
        sampler.load_state_dict(state["mixer"])
        start_step, tokens_seen, mlflow_run_id = state["step"], state["tokens_seen"], state.get("mlflow_run_id")

    # ---- tracking (rank 0 only) ------------------------------------------------------------------------
    tracker = _tracker(cfg, out, world, mlflow_run_id)
    tracker.log_params({"config": json.loads(cfg.model_dump_json()), "resolved": {
        "mixing": mix.to_dict(), "total_steps": total_steps, "max_seq_len": seq_len, "world_size": world.size,
        "accumulation": o.global_batch_size // (o.micro_batch_size * world.size)}})
    if world.main:
        for name, n in truncated.items():
            if n:
                print(f"[mixforge] {n} of {len(tokenized[name])} records of {name!r} were truncated to {seq_len} tokens")

    # ---- the loop --------------------------------------------------------------------------------------------
    metrics_file = out / "metrics.jsonl"
    progress = progress_bar(show_progress and world.main, transient=False)
    train_bar = progress.add_task("train", total=total_steps, completed=start_step)
    progress.start()
    model.train()
    step = start_step
    last: dict[str, float] = {}
    status = "succeeded"
    t0, tokens_at_t0 = time.perf_counter(), tokens_seen
    try:
        for step_records in sampler:
            step += 1
            by_kind = _split(step_records, tokenized, kind, replay_apart=o.replay_loss == "kl")
            loss_value, tokens_this_step = _train_step(
                train_model, model, ref, by_kind, optimizer, o, world, pad_id=pad_id, seq_len=seq_len, kind=kind)
            scheduler.step()
            tokens_seen += tokens_this_step

            to_file = step % o.log_every == 0 or step == total_steps  # metrics.jsonl
            to_tracker = step % cfg.tracking.log_every == 0 or step == total_steps  # MLflow
            if to_file or to_tracker:
                elapsed = time.perf_counter() - t0
                last = {"loss": loss_value, "lr": scheduler.get_last_lr()[0],
                        "tokens_per_s": (tokens_seen - tokens_at_t0) / max(elapsed, 1e-9),
                        "tokens_seen": float(tokens_seen), **sampler.metrics()}
                if to_tracker:
                    tracker.log_metrics(last, step)
                if to_file:
                    _append_jsonl(metrics_file, {"step": step, **last}, world)
            if (o.eval_every and step % o.eval_every == 0) or step == total_steps:
                curve = evaluate(train_model, ref, val, micro=o.micro_batch_size, batches=o.eval_batches, pad_id=pad_id,
                                 device=world.device)
                if curve:
                    tracker.log_metrics(curve, step)
                    _append_jsonl(metrics_file, {"step": step, **curve}, world)
                    last.update(curve)
            progress.update(train_bar, completed=step, description=f"train  loss {last.get('loss', math.nan):.4f}  "
                                                                   f"{last.get('tokens_per_s', 0):,.0f} tok/s")
            stopping = all_reduce_sum(float(stop.requested), world) > 0
            if (o.save_every and step % o.save_every == 0) or stopping:
                _save(ckpt_dir, step, train_model, optimizer, scheduler, sampler, tokens_seen, tracker, cfg, world)
            if stopping:
                status = "stopped"
                break
    finally:
        progress.stop()

    # ---- final save ------------------------------------------------------------------------------------------
    final_path = None
    if status == "succeeded":  # every rank: FSDP gathers the shards to rank 0, which writes one plain folder
        final_path = save_final_model(train_model, tokenizer, out / "final", world)  # adapter (LoRA) or full model
    if status == "succeeded" and world.main:
        (out / "truncation.json").write_text(json.dumps({"max_seq_len": seq_len, "truncated": truncated}))
        tracker.log_artifact(str(out / "mix_manifest.json"))
        tracker.log_artifact(str(final_path))
    tracker.finish("FINISHED" if status == "succeeded" else "KILLED")
    if world.size > 1:
        import torch.distributed as dist

        dist.barrier()
    return RunResult(status, str(out), str(final_path) if final_path else None, step, last, tracker.run_id)


# ---------------------------------------------------------------------------------------------------------
# one optimizer step
# ---------------------------------------------------------------------------------------------------------
def _train_step(train_model, model, ref, by_kind, optimizer, o, world: World, *, pad_id: int, seq_len: int,
                kind: str) -> tuple[float, int]:
    """Forward/backward over micro-batches of this rank's share, then one optimizer step.

    The loss is normalized by the number of loss tokens in the whole global step (all ranks), so gradient
    accumulation and the number of processes do not change the update. DPO pairs count as one unit each."""
    sft_items: list[Tokenized] = by_kind["sft"]
    pairs: list[TokenizedPair] = by_kind["pairs"]
    replay: list[Tokenized] = by_kind["replay"]  # general records under replay_loss kl (else they are in sft)
    local_tokens = sum(t.loss_tokens for t in sft_items) + sum(t.loss_tokens for t in replay)
    global_tokens = all_reduce_sum(float(local_tokens), world)
    global_pairs = all_reduce_sum(float(len(pairs)), world)
    # shares of the two objectives in the step: by records, as the mixer composed the step
    global_units = all_reduce_sum(float(len(sft_items) + len(replay) + len(pairs)), world)
    micro = o.micro_batch_size
    chunks = [("sft", sft_items[i : i + micro]) for i in range(0, len(sft_items), micro)]
    chunks += [("replay", replay[i : i + micro]) for i in range(0, len(replay), micro)]
    chunks += [("pairs", pairs[i : i + micro]) for i in range(0, len(pairs), micro)]
    fillers = _fillers(pad_id)
    chunks = even_chunks(chunks, world, fillers)  # as many forwards of each kind as the busiest rank (FSDP)
    loss_total = 0.0
    for i, (what, chunk) in enumerate(chunks):
        sync = i == len(chunks) - 1 or world.size == 1
        ctx = nullcontext() if sync or not hasattr(train_model, "no_sync") else train_model.no_sync()
        with ctx:
            if what in ("sft", "replay"):
                # replay_kl_tokens all: every position of the replay records, averaged to their label tokens' weight
                every = what == "replay" and o.replay_kl_tokens == "all" and chunk is not fillers[what]
                records = ([Tokenized(list(t.input_ids), list(t.input_ids), t.truncated) for t in chunk] if every
                           else chunk)
                batch = make_batch(records, packing=o.packing, seq_len=seq_len, pad_id=pad_id, device=world.device)
                weight = (sum(t.loss_tokens for t in chunk) / max(int((batch["labels"][:, 1:] != IGNORE).sum()), 1)
                          if every else 1.0)
                if what == "replay":  # KL(base || tuned) on the replay tokens (replay_loss.py)
                    loss = kl_to_base_sum(train_model, batch, base_model=train_model if ref is None else ref,
                                          base=base_context(model, ref)) * weight / max(global_tokens, 1.0)
                else:
                    loss = train_model(**batch) / max(global_tokens, 1.0)  # summed NLL, chunk by chunk
                if kind == "preference":  # replay records share the step with the pairs
                    loss = loss * (global_units - global_pairs) / global_units
            else:
                loss = dpo_loss_sum(train_model, ref, chunk, pad_id=pad_id, beta=o.dpo_beta, device=world.device)
                loss = loss / global_pairs * (global_pairs / global_units)
            if chunk is fillers[what]:  # a filler: the other ranks' forwards, nothing to learn
                loss = loss * 0.0
            (loss * world.size).backward()  # DDP averages gradients over ranks; the loss is already global
        loss_total += float(loss.detach())
    if not chunks and world.size > 1:  # a rank with nothing this step still joins the gradient all-reduce
        (sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0).backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], o.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    tokens = sum(len(t.input_ids) for t in [*sft_items, *replay]) + sum(len(p.chosen.input_ids) + len(p.rejected.input_ids)
                                                           for p in pairs)
    return all_reduce_sum(loss_total, world), int(all_reduce_sum(float(tokens), world))


# ---------------------------------------------------------------------------------------------------------
# small helpers of the recipe
# ---------------------------------------------------------------------------------------------------------
def _fillers(pad_id: int) -> dict[str, list]:
    """One micro-batch of each kind with no label token (what a rank runs while another rank is busier)."""
    blank = Tokenized([pad_id, pad_id], [IGNORE, IGNORE], 0)
    return {"sft": [blank], "replay": [blank], "pairs": [TokenizedPair(blank, blank)]}


def _split(step_records: list[tuple[str, int]], tokenized: dict[str, list], kind: str, *,
           replay_apart: bool = False) -> dict[str, list]:
    """The step's records by objective: DPO pairs, SFT records, and (replay_apart) the general sources' records."""
    by_kind: dict[str, list] = defaultdict(list)
    for source, index in step_records:
        item = tokenized[source][index]
        what = "pairs" if isinstance(item, TokenizedPair) else "replay" if replay_apart and source != DOMAIN else "sft"
        by_kind[what].append(item)
    return by_kind


def _check_manifest(out: Path, sampler, mix, *, force: bool, self_replay: dict | None = None) -> None:
    """Write the mixture manifest on a fresh run; on resume, refuse a changed source or config unless forced."""
    from mixforge.mix.manifest import MANIFEST_FILE, check_manifest, write_manifest

    if (out / MANIFEST_FILE).exists():
        check_manifest(out, sampler, config=mix, force=force, self_replay=self_replay)
    else:
        write_manifest(out, sampler, config=mix, self_replay=self_replay)


def _append_jsonl(path: Path, row: dict[str, Any], world: World) -> None:
    if world.main:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")


def _tracker(cfg: RunConfig, out: Path, world: World, run_id: str | None):
    from mixforge.track import NullTracker

    if not (cfg.tracking.enabled and world.main):
        return NullTracker()
    from mixforge.track.mlflow import MlflowTracker, default_store

    return MlflowTracker(experiment_name=cfg.tracking.experiment_name,
                         tracking_uri=cfg.tracking.tracking_uri or default_store(out),
                         run_name=cfg.tracking.run_name or cfg.job_name, run_id=run_id)


def _save(ckpt_dir, step, train_model, optimizer, scheduler, sampler, tokens_seen, tracker, cfg, world) -> None:
    """Every rank calls this: rank 0 writes one unsharded copy, or every rank its FSDP shard."""
    save_checkpoint(ckpt_dir, step=step, train_model=train_model, optimizer=optimizer, scheduler=scheduler,
                    state={"mixer": sampler.state_dict(), "tokens_seen": tokens_seen,
                           "mlflow_run_id": tracker.run_id, "config": json.loads(cfg.model_dump_json())},
                    keep=cfg.overrides.keep_checkpoints, world=world)
