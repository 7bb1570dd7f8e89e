"""The sentence encoder: tokenizer + ONNX graph (mean pooling and L2 norm are in the graph).

The trainer embeds its training data through this same class, so a router is trained on
exactly the embeddings it will be served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import ValidationError
from tokenizers import Tokenizer

from .errors import EncoderRefused
from .manifest import ENCODER_MANIFEST, EncoderIdentity, EncoderManifest, sha256_file
from .onnx_session import cpu_session
from .safety import refuse_unsafe_onnx

# Cutting a prompt to this many characters a token before tokenizing keeps a megabyte prompt
# cheap; ordinary text averages 4-5 characters a token, so the cut almost never loses one.
_CHARS_PER_TOKEN_BOUND = 24


@dataclass(frozen=True)
class EncodedBatch:
    embeddings: np.ndarray  # float32 [batch, dimension], unit length
    token_counts: list[int]
    truncated: list[bool]


class Encoder(Protocol):
    """What the service needs of a sentence encoder: ``OnnxEncoder`` serves, tests use fakes.

    ``encode`` returns unit-length float32 rows, one per text, and the same row for the same
    text (batching may change float rounding only, and not at all for int8 variants, which
    are run one text at a time); ``identity`` names exactly which embeddings it produces.
    """

    @property
    def identity(self) -> EncoderIdentity: ...

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> EncodedBatch: ...


class OnnxEncoder:
    """Loads an encoder directory (encoder.json, encoder.onnx, tokenizer.json) and embeds text."""

    def __init__(self, directory: Path, *, intra_op_threads: int = 1) -> None:
        self.directory = Path(directory)
        self.manifest = load_encoder_manifest(self.directory)
        identity = self.manifest.identity
        onnx_path = self.directory / self.manifest.onnx_file
        tokenizer_path = self.directory / self.manifest.tokenizer_file
        for path, expected in (
            (onnx_path, identity.onnx_sha256),
            (tokenizer_path, identity.tokenizer_sha256),
        ):
            if not path.is_file():
                raise EncoderRefused(f"encoder file {path} is missing")
            if sha256_file(path) != expected:
                raise EncoderRefused(
                    f"encoder file {path} does not match its sha256 in encoder.json"
                )
        refuse_unsafe_onnx(onnx_path, self.directory, error=EncoderRefused)

        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # Single prompts must not be padded to a fixed length: padding is pure wasted compute.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=identity.max_tokens)
        self._session = cpu_session(onnx_path, intra_op_threads)
        self._input_names = list(self.manifest.input_names)
        graph_inputs = {i.name for i in self._session.get_inputs()}
        if set(self._input_names) != graph_inputs:
            raise EncoderRefused(
                f"encoder.onnx inputs {sorted(graph_inputs)} differ from encoder.json "
                f"{sorted(self._input_names)}"
            )

    @property
    def identity(self) -> EncoderIdentity:
        return self.manifest.identity

    @property
    def dimension(self) -> int:
        return self.manifest.identity.dimension

    def encode(self, texts: Sequence[str]) -> EncodedBatch:
        """Embed ``texts``; each is cut to the encoder's token limit (reported, not an error)."""
        if not texts:
            return EncodedBatch(np.zeros((0, self.dimension), np.float32), [], [])
        limit = self.identity.max_tokens
        char_bound = limit * _CHARS_PER_TOKEN_BOUND
        encodings = self._tokenizer.encode_batch([t[:char_bound] for t in texts])
        # The cut is exact only when what is left still fills the limit. A word of over 100
        # characters is one [UNK] token, so a text of such words can be cut short of it:
        # those few are tokenized whole, as sentence-transformers does.
        short = [
            i
            for i, (text, enc) in enumerate(zip(texts, encodings, strict=True))
            if len(text) > char_bound and len(enc.ids) < limit
        ]
        for i, enc in zip(
            short, self._tokenizer.encode_batch([texts[i] for i in short]), strict=True
        ):
            encodings[i] = enc
        whole = set(short)
        width = max(len(e.ids) for e in encodings)
        batch = len(encodings)
        ids = np.zeros((batch, width), np.int64)
        mask = np.zeros((batch, width), np.int64)
        types = np.zeros((batch, width), np.int64)
        truncated = []
        for row, (text, enc) in enumerate(zip(texts, encodings, strict=True)):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = enc.attention_mask
            types[row, :n] = enc.type_ids
            truncated.append(bool(enc.overflowing) or (len(text) > char_bound and row not in whole))
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (embeddings,) = self._session.run(
            [self.manifest.output_name], {name: feeds[name] for name in self._input_names}
        )
        return EncodedBatch(
            embeddings=np.asarray(embeddings, dtype=np.float32),
            token_counts=[int(m.sum()) for m in mask],
            truncated=truncated,
        )


def load_encoder_manifest(directory: Path) -> EncoderManifest:
    path = Path(directory) / ENCODER_MANIFEST
    if not path.is_file():
        raise EncoderRefused(f"{directory} is not an encoder directory: {ENCODER_MANIFEST} missing")
    try:
        return EncoderManifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise EncoderRefused(f"{path} is not a valid encoder manifest: {exc}") from exc
