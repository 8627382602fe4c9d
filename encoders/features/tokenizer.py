"""A SentencePiece vocabulary for the raw-text transformer channel (Que2Search §3.1, §3.5).

:func:`train_sentencepiece` learns a model from the training corpus (queries and documents)
and writes it to one file; :class:`SentencePieceTokenizer` loads it and turns texts into a
:class:`TokenBatch` of fixed length.  Texts go through the same :func:`normalize_text` as the
hashed channels, at training and at encoding, so both see one alphabet.

Reserved ids: 0 pad, 1 unknown, 2 beginning-of-sequence (every sequence starts with it: it is
the slot that first-token pooling reads, like XLM's ``[CLS]``), 3 end-of-sequence (reserved).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from ebr.encoders.errors import EncoderConfigError, EncoderInputError
from ebr.encoders.features.batches import TokenBatch
from ebr.encoders.features.words import normalize_text

PAD_ID = 0
UNK_ID = 1
BOS_ID = 2
EOS_ID = 3
MODEL_TYPES = ("unigram", "bpe")


def train_sentencepiece(
    texts: Iterable[str],
    path: str | Path,
    vocab_size: int,
    *,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    num_threads: int = 1,
) -> Path:
    """Train a model on ``texts`` and write it to ``path``; return the path.

    The vocabulary has exactly ``vocab_size`` pieces (the four reserved ids included) or the
    call fails with :class:`EncoderConfigError` saying the largest size the corpus supports.
    ``character_coverage=1.0`` keeps every character seen; ``num_threads=1`` keeps training
    reproducible.  The file is written whole or not at all (temporary file, then rename).
    """
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 5:
        raise EncoderConfigError(f"sentencepiece: vocab_size must be an integer >= 5, got {vocab_size!r}")
    if model_type not in MODEL_TYPES:
        raise EncoderConfigError(f"sentencepiece: model_type must be one of {', '.join(MODEL_TYPES)}, "
                                 f"got {model_type!r}")
    if not 0.0 < character_coverage <= 1.0:
        raise EncoderConfigError("sentencepiece: character_coverage must be in (0, 1]")
    # SentencePiece holds the whole corpus in memory anyway; materialising it here lets errors
    # name the bad item instead of surfacing as an opaque RuntimeError from the C++ trainer.
    sentences: list[str] = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise EncoderInputError(f"sentencepiece corpus item {i}: expected a string, "
                                    f"got {type(text).__name__}")
        normalized = normalize_text(text).strip()
        if normalized:
            sentences.append(normalized)
    if not sentences:
        raise EncoderInputError("sentencepiece: the training corpus has no non-empty text")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            num_threads=num_threads,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            minloglevel=2,
        )
    except RuntimeError as e:
        reason = str(e).rsplit("] ", 1)[-1].strip() or str(e)
        raise EncoderConfigError(f"sentencepiece training failed: {reason}") from None
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.getvalue())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


class SentencePieceTokenizer:
    """A trained SentencePiece model that encodes texts to ``max_length`` ids.

    A row is ``[BOS, piece, piece, ...]`` truncated to ``max_length`` and right-padded with
    :data:`PAD_ID`; the mask is True on the non-pad positions, so it is never all False.
    """

    def __init__(self, model_proto: bytes, max_length: int) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2:
            raise EncoderConfigError(f"sentencepiece: max_length must be an integer >= 2 (room for the "
                                     f"start token and one piece), got {max_length!r}")
        try:
            processor = spm.SentencePieceProcessor(model_proto=model_proto)
        except RuntimeError:
            raise EncoderConfigError("sentencepiece: not a valid SentencePiece model") from None
        if (processor.pad_id(), processor.bos_id()) != (PAD_ID, BOS_ID):
            raise EncoderConfigError(
                f"sentencepiece: the model must reserve pad={PAD_ID} and bos={BOS_ID} "
                f"(it has pad={processor.pad_id()}, bos={processor.bos_id()}); train it with "
                "ebr.encoders.train_sentencepiece"
            )
        self._processor = processor
        self._model_proto = bytes(model_proto)
        self.max_length = max_length

    @classmethod
    def load(cls, path: str | Path, max_length: int) -> SentencePieceTokenizer:
        try:
            proto = Path(path).read_bytes()
        except OSError as e:
            raise EncoderConfigError(f"cannot read sentencepiece model {path}: {e.strerror}") from None
        return cls(proto, max_length)

    def with_max_length(self, max_length: int) -> SentencePieceTokenizer:
        """The same model encoding to another length (each text channel has its own)."""
        return SentencePieceTokenizer(self._model_proto, max_length)

    @property
    def vocab_size(self) -> int:
        return int(self._processor.get_piece_size())

    @property
    def model_proto(self) -> bytes:
        """The serialised model, byte for byte as trained (for model directories and fingerprints)."""
        return self._model_proto

    def pieces(self, text: str) -> list[str]:
        return list(self._processor.encode(normalize_text(text), out_type=str))

    def ids(self, text: str) -> list[int]:
        """``[BOS] + piece ids``, truncated to ``max_length``; no padding."""
        return self._row(self._processor.encode(normalize_text(text), out_type=int))

    def featurize(self, texts: Sequence[str]) -> TokenBatch:
        encoded = self._processor.encode([normalize_text(t) for t in texts], out_type=int)
        rows = [self._row(pieces) for pieces in encoded]
        # Padded to the longest row, not to max_length: one short query costs a 5-token
        # transformer pass instead of a max_length one (masked padding changes nothing else).
        length = max((len(r) for r in rows), default=1)
        ids = torch.full((len(texts), length), PAD_ID, dtype=torch.int64)  # (batch, length)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
        return TokenBatch(ids=ids, mask=ids != PAD_ID)

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, skipping the reserved ids (pad, start, end)."""
        kept = [i for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)]
        return str(self._processor.decode(kept))

    def _row(self, pieces: Sequence[int]) -> list[int]:
        return [BOS_ID, *pieces[: self.max_length - 1]]
