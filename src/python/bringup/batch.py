"""A batch API shaped like tt-metal's generator, for serving frameworks that schedule themselves.

A ``Generator`` holds up to ``max_batch`` user slots, each an engine sequence in the model's paged
KV pool. ``prefill_forward`` starts the given users on their prompts, ``decode_forward`` runs one
token for each given user; both run every row in shared batched steps and return one row of
logits per user. The engine owns the paging: ``page_table()`` shows each slot's KV blocks.

    gen = bringup.batch.Generator(model, max_batch=8)
    logits = gen.prefill_forward(tokens, prompt_lens)            # [B, vocab]
    logits = gen.decode_forward(next_ids, start_pos=prompt_lens)  # [B, vocab]
"""

import numpy as np

from . import _bringup


def _int_array(x, name, ndim):
    a = np.asarray(x.cpu().numpy() if hasattr(x, "cpu") else x)
    if a.dtype.kind not in "iu":
        raise _bringup.Error(f"{name}: expected integers, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise _bringup.Error(f"{name}: expected {ndim} dimensions, got {a.ndim}")
    return a.astype(np.int64, copy=False)


class Generator:
    def __init__(self, model, max_batch=32):
        if max_batch < 1:
            raise _bringup.Error("max_batch: must be at least 1")
        self.model = model
        self.max_batch = max_batch
        self.slots = [None] * max_batch

    def _users(self, user_ids, batch):
        users = list(range(batch)) if user_ids is None else [int(u) for u in user_ids]
        if len(users) != batch:
            raise _bringup.Error(f"user_ids: {len(users)} given for a batch of {batch}")
        for u in users:
            if not 0 <= u < self.max_batch:
                raise _bringup.Error(f"user_ids: {u} is outside [0, {self.max_batch})")
        if len(set(users)) != len(users):
            raise _bringup.Error("user_ids: a user appears twice in one batch")
        return users

    def prefill_forward(self, tokens, prompt_lens=None, user_ids=None):
        """tokens [B, T] (rows right-padded), prompt_lens [B] (default T): each user's slot starts
        over with tokens[i, :prompt_lens[i]]. Returns the logits of each prompt's last position."""
        tokens = _int_array(tokens, "tokens", 2)
        batch, width = tokens.shape
        lens = (np.full(batch, width) if prompt_lens is None
                else _int_array(prompt_lens, "prompt_lens", 1))
        if len(lens) != batch:
            raise _bringup.Error(f"prompt_lens: {len(lens)} given for a batch of {batch}")
        for i, n in enumerate(lens):
            if not 1 <= n <= width:
                raise _bringup.Error(f"prompt_lens[{i}]: {n} is outside [1, {width}]")
        users = self._users(user_ids, batch)
        for u in users:
            if self.slots[u] is not None:
                self.slots[u].release()
            self.slots[u] = self.model.new_sequence()
        out = self.model.forward([self.slots[u] for u in users],
                                 [tokens[i, :lens[i]] for i in range(batch)])
        return np.stack(out)

    def decode_forward(self, tokens, start_pos, user_ids=None):
        """tokens [B] (or [B, 1]) at positions start_pos [B]: one step for each user. A
        start_pos before the slot's end rolls the slot back to it first."""
        tokens = _int_array(tokens, "tokens", np.ndim(tokens))
        tokens = tokens.reshape(-1) if tokens.ndim == 2 and tokens.shape[1] == 1 else tokens
        if tokens.ndim != 1:
            raise _bringup.Error("tokens: expected [batch] or [batch, 1]")
        pos = _int_array(start_pos, "start_pos", 1)
        if len(pos) != len(tokens):
            raise _bringup.Error(f"start_pos: {len(pos)} given for a batch of {len(tokens)}")
        users = self._users(user_ids, len(tokens))
        for i, u in enumerate(users):
            seq = self.slots[u]
            if seq is None:
                raise _bringup.Error(f"user_ids: user {u} has no prefilled sequence")
            if not 0 <= pos[i] <= seq.length:
                raise _bringup.Error(f"start_pos[{i}]: {pos[i]} but user {u} holds "
                                     f"{seq.length} positions")
            if pos[i] < seq.length:
                seq.truncate(int(pos[i]))
        out = self.model.forward([self.slots[u] for u in users],
                                 [tokens[i:i + 1] for i in range(len(tokens))])
        return np.stack(out)

    def page_table(self):
        """Each slot's KV block ids (an empty list for a free slot)."""
        return [s.block_table if s is not None else [] for s in self.slots]

    def release(self, user_ids=None):
        """Frees the users' slots (every slot by default)."""
        for u in (range(self.max_batch) if user_ids is None else user_ids):
            if self.slots[u] is not None:
                self.slots[u].release()
                self.slots[u] = None
