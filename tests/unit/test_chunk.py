from __future__ import annotations

from llmops.index.chunk import chunk_document
from llmops.records import Document


def _doc(paras: list[int], doc_id: str = "d") -> Document:
    text = "\n\n".join(" ".join(f"w{p}_{i}" for i in range(n)) for p, n in enumerate(paras))
    return Document(doc_id=doc_id, text=text)


def test_small_paragraphs_are_packed_and_whole() -> None:
    chunks = chunk_document(_doc([50, 50, 50, 50, 50]), size=120, overlap=20)
    assert all(len(c.text.split()) <= 120 for c in chunks)
    words = [w for c in chunks for w in c.text.split()]
    assert set(words) == {f"w{p}_{i}" for p in range(5) for i in range(50)}  # nothing lost


def test_long_paragraph_is_split_with_overlap() -> None:
    chunks = chunk_document(_doc([500]), size=200, overlap=40)
    assert [len(c.text.split()) for c in chunks] == [200, 200, 180]
    assert chunks[0].text.split()[-40:] == chunks[1].text.split()[:40]


def test_ids_are_stable_and_change_with_text() -> None:
    a = chunk_document(_doc([30, 30]))
    b = chunk_document(_doc([30, 30]))
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]
    changed = Document(doc_id="d", text=a[0].text + " extra")
    assert chunk_document(changed)[0].chunk_id != a[0].chunk_id
    other_doc = chunk_document(_doc([30, 30], doc_id="e"))
    assert other_doc[0].chunk_id != a[0].chunk_id


def test_no_window_of_overlap_only() -> None:
    chunks = chunk_document(_doc([190, 100, 100]), size=200, overlap=40)
    assert all(len(c.text.split()) > 40 for c in chunks)


def test_sentence_mode_keeps_sentences_whole_and_rejects_unknown_modes() -> None:
    import pytest

    from llmops.index.chunk import chunk_document
    from llmops.records import Document

    doc = Document(doc_id="d", text="One two three four. Five six seven eight. Nine ten eleven twelve.")
    by_sentence = [c.text for c in chunk_document(doc, size=6, overlap=0, mode="sentence")]
    assert by_sentence == ["One two three four.", "Five six seven eight.", "Nine ten eleven twelve."]
    by_paragraph = [c.text for c in chunk_document(doc, size=6, overlap=0)]
    assert by_paragraph[0] == "One two three four. Five six"  # a paragraph too long for a window is cut
    with pytest.raises(ValueError, match="unknown"):
        chunk_document(doc, mode="page")
