"""A document made ready to store: its cleaned layout, its passages, and their normalized text.

The one path from a ``Document`` to rows, shared by ``build`` and ``live``: parse
(clean, metadata, headings) → chunk at sentence ends → split anything over the
model's token limit → normalize each passage for matching.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..models import Embedder
from ..storage.record.store import StoredDocument, StoredPassage
from ..text.chunk import ChunkConfig, chunk, fit_token_limit
from ..text.clean import Layout, parse
from ..text.ingest import Document
from ..text.normalize import normalize


@dataclass(frozen=True)
class Prepared:
    document: StoredDocument
    passages: list[StoredPassage]

    def numbered_from(self, offset: int) -> Prepared:
        """The same passages with ``offset`` added to their ids (prepared apart, numbered under a lock)."""
        return Prepared(self.document, [replace(p, id=p.id + offset) for p in self.passages])


def stored_document(doc: Document, layout: Layout) -> StoredDocument:
    return StoredDocument(
        id=doc.id,
        title=layout.title,
        text=doc.text,
        metadata=layout.metadata,
        content_hash=doc.content_hash,
        source=doc.source,
        format=doc.format,
        origin=doc.origin,
    )


def passages(
    doc: Document, layout: Layout, config: ChunkConfig, embedder: Embedder, first_id: int
) -> list[StoredPassage]:
    """The document's passages, numbered from ``first_id``.

    A paginated document (a PDF of several pages) is never one whole passage: a passage
    stays on the pages it cites (``ChunkConfig.whole_chars`` applies to the others).
    """
    if int(layout.metadata.get("pages", 1) or 1) > 1:
        config = replace(config, whole_chars=0)
    chunks = fit_token_limit(doc.text, chunk(doc.text, layout, config), embedder.count_tokens, embedder.max_tokens)
    return [
        StoredPassage(
            id=first_id + ordinal,
            doc_id=doc.id,
            ordinal=ordinal,
            section=c.section,
            section_path=c.section_path,
            start=c.start,
            end=c.end,
            text=doc.text[c.start : c.end],
            norm_text=normalize(doc.text[c.start : c.end]),
            title=layout.title,
        )
        for ordinal, c in enumerate(chunks)
    ]


def prepare(doc: Document, config: ChunkConfig, embedder: Embedder, first_id: int) -> Prepared:
    layout = parse(doc)
    return Prepared(stored_document(doc, layout), passages(doc, layout, config, embedder, first_id))
