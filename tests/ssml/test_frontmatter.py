"""A Markdown manuscript's YAML front matter: book metadata, read safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from ssml.ingest import load
from ssml.ingest.frontmatter import FrontMatter, read_front_matter

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def test_fields_are_read_as_text() -> None:
    front, warnings = read_front_matter(
        "title: The Clock\nauthors: [Ada Writer, Sam Second]\nlang: en\ndate: 2024-05-01\n"
        "description: A story.\ncover: art/cover.jpg\n"
    )
    assert front == FrontMatter(
        "The Clock", ("Ada Writer", "Sam Second"), "en", "2024-05-01", "A story.", "art/cover.jpg"
    )
    assert warnings == []
    assert read_front_matter("author: Jo\n")[0].authors == ("Jo",)


@pytest.mark.parametrize(
    ("source", "warning"),
    [
        ("title: [a, b\n", "not valid YAML"),
        ("- a list\n", "not a set of"),
        ("base: &x [1, 2]\ntitle: *x\n", "not valid YAML"),  # anchors and aliases refused
        ("title: {nested: map}\n", "not a plain value"),
        ("title: !!python/object:os.system ls\n", "not valid YAML"),
        ("author: {name: x}\n", "not a name"),
        ("title: x\n" + "#" * 70_000, "larger than 64 KB"),
    ],
)
def test_what_is_not_metadata_is_a_warning(source: str, warning: str) -> None:
    front, warnings = read_front_matter(source)
    assert front.title is None
    assert any(warning in w for w in warnings), warnings


def test_markdown_front_matter_reaches_the_document(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "cover.jpg").write_bytes(JPEG)
    source = tmp_path / "book.md"
    source.write_text(
        "---\ntitle: The Clock\nauthor: Ada Writer\ncover: art/cover.jpg\n---\n\n"
        "# One\n\nA short chapter.\n"
    )
    document = load(source)
    assert document.title == "The Clock"
    assert document.metadata.authors == ("Ada Writer",)
    assert document.metadata.cover is not None
    assert document.metadata.cover.media_type == "image/jpeg"


@pytest.mark.parametrize("cover", ["../outside.jpg", "/etc/passwd", "missing.jpg", "notes.txt"])
def test_a_cover_outside_the_folder_or_not_an_image_is_only_a_warning(
    tmp_path: Path, cover: str
) -> None:
    folder = tmp_path / "book"
    folder.mkdir()
    (tmp_path / "outside.jpg").write_bytes(JPEG)
    (folder / "notes.txt").write_text("not an image")
    source = folder / "book.md"
    source.write_text(f"---\ncover: {cover}\n---\n\n# One\n\nText.\n")
    document = load(source)
    assert document.metadata.cover is None
    assert any("is not used" in w for w in document.warnings)
