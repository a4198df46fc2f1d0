"""The reference bring-up's model contract on bringup's engine.

``build_model(hf_model, device, max_seq_len, precision=...)`` takes a Hugging Face
``PreTrainedModel`` (its config and weights are read from memory, no round trip through disk) or
a checkpoint directory, and returns a ``torch.nn.Module`` + ``GenerationMixin`` whose ``forward``
returns ``CausalLMOutputWithPast`` with a ``BringupCache`` that ``generate()`` carries from step to
step. Each row of a batch is its own engine sequence: left padding (positions whose
attention_mask is 0) never enters the cache, so a padded row computes exactly what it computes
alone. Identical rows (``num_return_sequences``, beams) share their prompt's KV blocks (forks),
and beam search reorders the cache by forking.

Without transformers the module still works (forward, the cache, a small stand-in for
``CausalLMOutputWithPast``); ``generate()`` needs transformers.
"""

import json
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from . import _bringup

try:
    from transformers import GenerationConfig, GenerationMixin, PretrainedConfig
    from transformers.modeling_outputs import CausalLMOutputWithPast

    HAVE_TRANSFORMERS = True
except ImportError:  # pure torch: forward and the cache only
    HAVE_TRANSFORMERS = False
    GenerationMixin = object
    GenerationConfig = None
    PretrainedConfig = None

    @dataclass
    class CausalLMOutputWithPast:
        """transformers' output class, as far as bringup fills it."""

        loss: Optional[torch.Tensor] = None
        logits: Optional[torch.Tensor] = None
        past_key_values: Any = None
        hidden_states: Any = None
        attentions: Any = None

        def __getitem__(self, key):
            return getattr(self, key) if isinstance(key, str) else self.to_tuple()[key]

        def to_tuple(self):
            return tuple(v for v in (self.loss, self.logits, self.past_key_values) if v is not None)


SUPPORTED = ("qwen2", "llama")
_TORCH_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _checkpoint_from_hf(hf_model):
    """A bringup Checkpoint viewing the HF model's parameters in place."""
    config = hf_model.config
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise _bringup.Error(
            f"hf_model: {type(hf_model).__name__} has model_type {model_type!r}; bringup runs "
            f"{' and '.join(SUPPORTED)} models")
    tensors = []
    for name, t in hf_model.state_dict().items():
        if not name.endswith(".weight") and not name.endswith(".bias"):
            continue  # buffers such as rotary inv_freq: bringup computes its own
        if t.dtype not in _TORCH_DTYPES:
            raise _bringup.Error(f"hf_model: tensor '{name}' has dtype {t.dtype}; expected "
                                 "float32, bfloat16 or float16")
        if t.device.type != "cpu":
            raise _bringup.Error(f"hf_model: tensor '{name}' is on {t.device}; move the model "
                                 "to the CPU first")
        t = t.detach().contiguous()
        tensors.append((name, _TORCH_DTYPES[t.dtype], list(t.shape), t.data_ptr(),
                        t.numel() * t.element_size(), t))
    generation = getattr(hf_model, "generation_config", None)
    gen_json = generation.to_json_string(use_diff=False) if generation is not None else ""
    label = getattr(config, "_name_or_path", "") or type(hf_model).__name__
    return _bringup.Checkpoint.from_memory(os.path.basename(str(label).rstrip("/")) or label,
                                           config.to_json_string(use_diff=False), gen_json,
                                           tensors)


def _as_device(device):
    if isinstance(device, _bringup.Device):
        return device
    if device is None or str(device) == "cpu":
        return _bringup.Device()
    raise _bringup.Error(f"device: expected a bringup.Device or 'cpu', got {device!r}")


class BringupCache:
    """The KV state HF's generation loop carries: one engine sequence per batch row, and how many
    input columns the rows have consumed (padding included)."""

    def __init__(self, engine, rows):
        self.engine = engine
        self.sequences = rows
        self.columns = 0

    def get_seq_length(self, layer_idx=0):
        return self.columns

    def __len__(self):
        return len(self.sequences)

    def reorder_cache(self, beam_idx):
        """Row i continues from row beam_idx[i] (beam search): the KV blocks are shared by forking."""
        order = [int(i) for i in (beam_idx.tolist() if hasattr(beam_idx, "tolist") else beam_idx)]
        old = self.sequences
        self.sequences = [self.engine.fork(old[i]) for i in order]
        for s in old:
            s.release()

    def crop(self, max_length):
        raise _bringup.Error("BringupCache: cropping (assisted generation) is not supported")


class BringupForCausalLM(torch.nn.Module, GenerationMixin):
    """A causal LM whose forward pass runs on bringup's engine."""

    main_input_name = "input_ids"
    _supports_cache_class = False  # generate() leaves the cache to forward (a BringupCache)
    _supports_static_cache = False
    _is_stateful = False

    def __init__(self, engine, checkpoint, config, generation_config, device):
        super().__init__()
        self.engine = engine
        self.checkpoint = checkpoint
        self.bringup_device = device
        self.config = config
        self.generation_config = generation_config
        self.vocab_size = engine.vocab_size

    @classmethod
    def can_generate(cls):
        return HAVE_TRANSFORMERS

    @property
    def device(self):
        return torch.device("cpu")

    @property
    def dtype(self):
        return torch.float32

    def _rows(self, input_ids, attention_mask):
        """Per row, the ids that enter its sequence (attention_mask 1) and where they sit."""
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
            raise _bringup.Error("input_ids: expected a 2-D tensor [batch, tokens]")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise _bringup.Error(f"input_ids: expected integer token ids, got {input_ids.dtype}")
        ids = input_ids.cpu().numpy().astype(np.int64, copy=False)
        if attention_mask is None:
            keep = np.ones(ids.shape, dtype=bool)
        else:
            mask = attention_mask.cpu().numpy()
            if mask.shape[0] != ids.shape[0] or mask.shape[1] < ids.shape[1]:
                raise _bringup.Error(f"attention_mask: shape {list(mask.shape)} does not cover "
                                     f"input_ids {list(ids.shape)}")
            keep = mask[:, -ids.shape[1]:] != 0
        return ids, keep

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, use_cache=True,
                logits_to_keep=0, position_ids=None, cache_position=None, inputs_embeds=None,
                labels=None, return_dict=True, output_attentions=False,
                output_hidden_states=False, **kwargs):
        if inputs_embeds is not None:
            raise _bringup.Error("inputs_embeds: bringup takes input_ids")
        if output_attentions or output_hidden_states:
            raise _bringup.Error("output_attentions / output_hidden_states: use bringup.compare "
                                 "for the residual stream")
        if labels is not None:
            raise _bringup.Error("labels: bringup computes no loss")
        ids, keep = self._rows(input_ids, attention_mask)
        batch, width = ids.shape
        cache = past_key_values
        if cache is None:
            cache = BringupCache(self.engine, [])
            firsts = {}  # identical rows share their prompt through a fork
            for b in range(batch):
                key = ids[b][keep[b]].tobytes()
                if key in firsts:
                    cache.sequences.append(None)
                else:
                    firsts[key] = b
                    cache.sequences.append(self.engine.new_sequence())
            same = [firsts[ids[b][keep[b]].tobytes()] for b in range(batch)]
        else:
            if not isinstance(cache, BringupCache):
                raise _bringup.Error("past_key_values: expected the BringupCache that forward "
                                     "returned")
            if len(cache) != batch:
                raise _bringup.Error(f"past_key_values holds {len(cache)} rows, input_ids "
                                     f"{batch}")
            same = list(range(batch))
        run = [b for b in range(batch) if same[b] == b and keep[b].any()]
        all_positions = not (logits_to_keep == 1)
        out = self.engine.forward([cache.sequences[b] for b in run],
                                  [ids[b][keep[b]] for b in run], all_positions)
        for b in range(batch):
            if cache.sequences[b] is None:
                cache.sequences[b] = self.engine.fork(cache.sequences[same[b]])
        cache.columns += width

        vocab = self.vocab_size
        width_out = width if all_positions else 1
        logits = np.zeros((batch, width_out, vocab), dtype=np.float32)
        got = dict(zip(run, out))
        for b in range(batch):
            row = got.get(same[b])
            if row is None:
                continue
            if all_positions:
                logits[b, keep[b]] = row
            else:
                logits[b, 0] = row
        if isinstance(logits_to_keep, int) and logits_to_keep > 1:
            logits = logits[:, -logits_to_keep:]
        return CausalLMOutputWithPast(logits=torch.from_numpy(logits),
                                      past_key_values=cache if use_cache else None)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None,
                                      use_cache=True, logits_to_keep=None, **kwargs):
        if past_key_values is not None:
            input_ids = input_ids[:, past_key_values.columns:]
        inputs = {"input_ids": input_ids, "past_key_values": past_key_values,
                  "attention_mask": attention_mask, "use_cache": use_cache}
        if logits_to_keep is not None:
            inputs["logits_to_keep"] = logits_to_keep
        return inputs

    def _reorder_cache(self, past_key_values, beam_idx):
        past_key_values.reorder_cache(beam_idx)
        return past_key_values


def build_model(hf_model, device=None, max_seq_len=0, precision="bfp8-mixed", **options):
    """The reference bring-up's contract: `hf_model` is a transformers PreTrainedModel (taken
    from memory) or a checkpoint directory; `device` a bringup.Device (or "cpu"); `options` are
    bringup.build_model's (kv_budget_tokens, max_sequences, kv_block_size, prefill_chunk,
    max_logit_rows)."""
    device = _as_device(device)
    if isinstance(hf_model, (str, os.PathLike)):
        path = os.fspath(hf_model)
        checkpoint = _bringup.Checkpoint.open(path)
        config = generation = None
        if HAVE_TRANSFORMERS:
            config = _config_of(path)
            generation = (GenerationConfig.from_pretrained(path)
                          if os.path.exists(os.path.join(path, "generation_config.json"))
                          else GenerationConfig.from_model_config(config))
    elif hasattr(hf_model, "config") and hasattr(hf_model, "state_dict"):
        checkpoint = _checkpoint_from_hf(hf_model)
        config = hf_model.config
        generation = getattr(hf_model, "generation_config", None)
    else:
        raise _bringup.Error(f"hf_model: expected a transformers PreTrainedModel or a checkpoint "
                             f"directory, got {type(hf_model).__name__}")
    engine = _bringup.build_model(checkpoint, device, max_seq_len=max_seq_len,
                                  precision=precision, **options)
    if config is None:
        config = _PlainConfig(engine.config)
    return BringupForCausalLM(engine, checkpoint, config, generation, device).eval()


def _config_of(path):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path)


class _PlainConfig:
    """The config attributes a caller reads, without transformers."""

    is_encoder_decoder = False

    def __init__(self, fields):
        self.__dict__.update(fields)

    def to_json_string(self):
        return json.dumps(self.__dict__)
